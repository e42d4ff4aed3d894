"""Each chapter's downloads: its figures as SVG saved by the kernel's start-up file, its tables as
CSV from results.json, and the section that links them."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from instab.book import downloads, sources

VALUES = {
    "threshold": 0.05,
    "sweeps": {"smooth": {"lrs": [0.3, 0.1], "amplification": [[7.5, 9.0], [1.0, 2.0]], "status": ["up", "down"]}},
    "table5": [{"name": "a", "ratio": 1.5, "ci": [1.0, 2.0]}, {"name": "b", "ratio": 0.5, "ci": [0.1, 0.9]}],
    "grids": {"relu": {"k": [1, 3], "mean": 80.0}, "swish": {"k": [1, 3], "mean": 81.0}},
    "trajectory": {"lr": 0.1, "acc": [[1.0, 2.0], [3.0, float("nan")]]},
}


def test_tables_find_the_records_the_columns_the_rows_and_the_matrices() -> None:
    t = downloads.tables(VALUES)
    assert sorted(t) == ["grids", "sweeps.smooth", "table5", "trajectory.acc"]
    assert t["sweeps.smooth"] == (["lrs", "amplification[0]", "amplification[1]", "status"],
                                  [[0.3, 7.5, 9.0, "up"], [0.1, 1.0, 2.0, "down"]])
    assert t["table5"] == (["name", "ratio", "ci[0]", "ci[1]"], [["a", 1.5, 1.0, 2.0], ["b", 0.5, 0.1, 0.9]])
    assert t["grids"] == (["name", "k[0]", "k[1]", "mean"], [["relu", 1, 3, 80.0], ["swish", 1, 3, 81.0]])
    assert t["trajectory.acc"][1][1][0] == 1 and len(t["trajectory.acc"][0]) == 3
    leaves = dict(downloads.leaves(VALUES))
    assert leaves["threshold"] == 0.05 and leaves["sweeps.smooth.amplification[1][0]"] == 1.0
    assert len(leaves) == 1 + 8 + 8 + 6 + 5


def test_csv_keeps_every_digit_and_reads_back() -> None:
    text = downloads.csv_text(["x", "y"], [[0.1 + 0.2, None], [float("nan"), "a,b"]])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [["x", "y"], ["0.30000000000000004", ""], ["nan", "a,b"]]
    taken: set[str] = set()
    assert downloads.file_name("perturbation k (paper form)", taken) == "perturbation-k-paper-form.csv"
    assert downloads.file_name("Perturbation k: paper form", taken) == "perturbation-k-paper-form-2.csv"


def test_stage_and_section(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text(json.dumps({"claims": [], "values": VALUES}))
    (out / "fig-a.svg").write_text("<svg/>")
    staged = downloads.stage("ch", out, tmp_path / "site" / "data" / "ch")
    assert staged == {"results": ["results.json"], "figures": ["fig-a.svg"],
                      "tables": ["values.csv", "sweeps-smooth.csv", "table5.csv", "grids.csv", "trajectory-acc.csv"]}
    for names in staged.values():
        assert all((tmp_path / "site" / "data" / "ch" / n).is_file() for n in names)
    text = downloads.section("ch", staged, "data/ch")
    assert text.startswith("## Downloads") and "{download}`results.json <data/ch/results.json>`" in text
    assert "{download}`fig-a.svg <data/ch/fig-a.svg>`" in text and "<data/ch/table5.csv>" in text


def test_the_kernel_saves_each_glued_figure_as_svg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The start-up file, run as a kernel runs it, then a chapter's glue: the SVG is there and
    glue still records the figure."""
    folder = downloads.use_kernel_startup(tmp_path)
    assert folder == tmp_path / "ipython"  # where the kernels' $IPYTHONDIR points (Settings.export)
    startup = next((folder / "profile_default" / "startup").glob("*.py"))
    chapter = (startup.read_text() + "\nimport matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
               "from myst_nb import glue\nfig, ax = plt.subplots()\nax.plot([0, 1], [1, 0])\n"
               "glue('fig-line', fig, display=False)\nglue('n', 3, display=False)\n"
               "import numpy as np\nfig, ax = plt.subplots()\nxs = np.random.default_rng(0).random((2, 50000))\n"
               "dots = ax.scatter(*xs, s=0.1)\nglue('fig-cloud', fig, display=False)\n"
               "assert not dots.get_rasterized()\n")
    run = subprocess.run([sys.executable, "-c", chapter], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    svg = tmp_path / "fig-line.svg"
    assert svg.is_file() and svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()
    assert not (tmp_path / "n.svg").exists()
    cloud = (tmp_path / "fig-cloud.svg").read_text()  # 50 000 points: drawn as an image inside the SVG
    assert "<image" in cloud and len(cloud) < 1_000_000


def test_the_record_vouches_for_the_figures(tmp_path: Path) -> None:
    (tmp_path / "ch.ipynb").write_text("{}")
    (tmp_path / "results.json").write_text("{}")
    (tmp_path / "fig.svg").write_text("<svg/>")
    sources.write_stamp(tmp_path, "ch", "d")
    assert sources.cache_problem(tmp_path, "ch", "d") is None
    (tmp_path / "fig.svg").write_text("<svg>edited</svg>")
    assert "fig.svg was damaged or edited" in (sources.cache_problem(tmp_path, "ch", "d") or "")
