"""instab — executable reproduction of *Surprising Instabilities in Training Deep Networks and a
Theoretical Analysis* (Sun, Lao, Sundaramoorthi, Yezzi; NeurIPS 2022).

Modules, one concept each (dependencies point down this list only):

- :mod:`instab.determinism` — every flag that makes a run reproducible.
- :mod:`instab.report`      — the paper's reported numbers and a chapter's ``results.json``.
- :mod:`instab.bounds`      — the stability formulas (heat amplifier and CFL, eq. (13), (39)–(41), ...).
- :mod:`instab.pde`         — the schemes: heat equation (2), the one-layer CNN of §5.
- :mod:`instab.book`        — the build driver behind ``make book``.

Torch-dependent modules (optim, models, data, train, grid) are imported on use, so the PDE
chapters do not pay for importing torch.
"""

__version__ = "0.1.0"
