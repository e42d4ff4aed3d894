"""The chapters' experiments, one module per chapter: a figure reaches its code in one hop.

- :mod:`instab.studies.heat` — §3: the heat equation under scheme (2) and its CFL bound (Fig. 1).
- :mod:`instab.studies.linear` — §5.1–5.3: bounds of the linearised one-layer CNN (Fig. 3, Table 2).
- :mod:`instab.studies.momentum` — App. D: the same bounds under Nesterov momentum (Table 6);
  :mod:`~instab.studies.onelayer`: what the two share (parameters, the paper's measured bounds).
- :mod:`instab.studies.nonlinear` — §5.4: the nonlinear one-layer CNN, its σ-map (★), Table 3, Fig. 4;
  :mod:`~instab.studies.nonlinear_results`: what its steps return and the rules that read only that.
- :mod:`instab.studies.sgd` — §4: what the three perturbed-SGD chapters share (configurations, runs, curves);
  :mod:`~instab.studies.sgd_growth` (Fig. 2 left), :mod:`~instab.studies.sgd_variance` (Tables 1, 4, 5;
  its other tables in :mod:`~instab.studies.sgd_tables`), :mod:`~instab.studies.sgd_threshold` (Figs. 2
  right, 5) with :mod:`~instab.studies.sgd_limit` (App. E's linear stability limit against the measured
  threshold).
- :mod:`instab.studies.open_questions` — §6: the open questions' parameters, plan and runs; one module per
  question: :mod:`~instab.studies.open_trajectories` (the edge along the trajectory),
  :mod:`~instab.studies.open_controllers` (the growth controller on the grid), :mod:`~instab.studies.open_cap`
  (the curvature cap at the edge of full-batch GD), :mod:`~instab.studies.open_null` (Jordan's null model).
- :mod:`instab.studies.multilayer` — App. E: the largest stable learning rate against 2/α (Fig. 6).
"""
