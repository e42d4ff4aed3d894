"""instab — executable reproduction of *Surprising Instabilities in Training Deep Networks and a
Theoretical Analysis* (Sun, Lao, Sundaramoorthi, Yezzi; NeurIPS 2022).

Modules, one concept each (dependencies point down this list only):

- :mod:`instab.determinism` — every flag that makes a run reproducible.
- :mod:`instab.report`      — the paper's reported numbers and a chapter's ``results.json``.
- :mod:`instab.bounds`      — the stability formulas (heat amplifier and CFL, eq. (13), (39)–(41), ...).
- :mod:`instab.pde`         — the schemes: heat equation (2), the one-layer CNN of §5.
- :mod:`instab.book`        — the build driver behind ``make book``.
- :mod:`instab.optim`       — PerturbedSGD (paper §4.1): torch's SGD with the update perturbed by k.
- :mod:`instab.metrics`     — RelL1 (paper §4.2), prediction disagreement.
- :mod:`instab.models`      — CIFAR ResNet(6n+2), VGG16-BN, MLP, small CNN; Swish(β).
- :mod:`instab.data`        — Fashion-MNIST / CIFAR-10 as tensors; seeded batch order.
- :mod:`instab.train`       — several perturbations in lockstep on shared batches → history.
- :mod:`instab.grid`        — configurations × executor → cached, atomic, resumable results.

Torch-dependent modules (optim, models, data, train, grid) are imported on use, so the PDE
chapters do not pay for importing torch.
"""

__version__ = "0.1.0"
