"""The chapters' experiments, one module per chapter: a figure reaches its code in one hop.

- :mod:`instab.studies.sgd` — §4: what the three perturbed-SGD chapters share (configurations, runs, curves);
  :mod:`~instab.studies.sgd_growth` (Fig. 2 left), :mod:`~instab.studies.sgd_variance` (Tables 1, 4, 5),
  :mod:`~instab.studies.sgd_threshold` (Figs. 2 right, 5).
- :mod:`instab.studies.multilayer` — App. E: the largest stable learning rate against 2/α (Fig. 6).
"""
