"""instab — executable reproduction of *Surprising Instabilities in Training Deep Networks and a
Theoretical Analysis* (Sun, Lao, Sundaramoorthi, Yezzi; NeurIPS 2022).

Modules, one concept each (dependencies point down this list only):

- :mod:`instab.determinism` — every flag that makes a run reproducible.
- :mod:`instab.checks`      — parameter validation that names the bad value and the allowed ones.
- :mod:`instab.report`      — the paper's reported numbers and a chapter's ``results.json``.
- :mod:`instab.bounds`      — the stability formulas: heat amplifier and CFL (§3), eq. (13), (39)–(41),
  (60)–(61), the exact windowed bounds, Table 3, the multilayer bound (64)–(65).
- :mod:`instab.pde`         — the schemes: heat equation (2) (``heat``); the one-layer CNN of §5,
  linearised (9)–(10) and Nesterov (51)–(52) (``onelayer``) and nonlinear (8) (``nonlinear``);
  FFT correlation (``correlate``) and test images (``images``).
- :mod:`instab.optim`       — PerturbedSGD (paper §4.1): torch's SGD with the update perturbed by k.
- :mod:`instab.metrics`     — RelL1 (paper §4.2), prediction disagreement.
- :mod:`instab.models`      — CIFAR ResNet(6n+2), VGG16-BN, MLP, small CNN; Swish(β).
- :mod:`instab.datasets`    — puts the data sets on disk (set-up); :mod:`instab.data` — loads them as
  tensors, seeded batch order.
- :mod:`instab.runspec`     — what a lockstep run is: RunSpec, Variant; :mod:`instab.history` — what
  it records: History, the end-of-epoch bookkeeping; :mod:`instab.step` — the loss, the schedule,
  the initial perturbation; :mod:`instab.batched` — the stacked engine (the variants as one computation);
  :mod:`instab.train` — the one training loop: several perturbations in lockstep on shared batches
  → history, per model or stacked.
- :mod:`instab.grid`        — configurations × executor → cached, atomic, resumable results;
  :mod:`instab.executors` — the engines (local pool, Dask, Slurm through submitit).
- :mod:`instab.stability`   — divergence, bisection of the largest stable learning rate, Hessian λ₀ (App. E).
  :mod:`instab.threshold` — one App. E cell: the largest stable learning rate of a network.
- :mod:`instab.studies`     — the chapters' experiments, one module per chapter (``studies.heat``, ``linear``,
  ``momentum``, ``nonlinear``; ``studies.sgd_growth``, ``sgd_variance``, ``sgd_threshold``: §4, sharing
  ``studies.sgd``; ``studies.multilayer``: App. E).
- :mod:`instab.book`        — the build driver behind ``make book``.
- :mod:`instab.lockfile`    — the lock file (``requirements/lock.txt``) and the files made from it.

Torch-dependent modules (optim, models, data, train, grid) are imported on use, so the PDE
chapters do not pay for importing torch.
"""

__version__ = "0.1.0"
