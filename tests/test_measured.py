"""Archived grids (book/measured/): the checksum guards the matrix, the statistics and the verdict
are recomputed from it, and the registry's expected verdict is checked against them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from instab import findings
from instab.studies import measured
from instab.studies import sgd_variance as study


def _archive(tmp_path: Path, acc: np.ndarray, name: str = "g") -> Path:
    content = {"name": name, "network": "cnn_bn 16-32, Swish", "k_values": list(range(1, 2 * acc.shape[0], 2)),
               "seeds": list(range(acc.shape[1])), "accuracy": acc.tolist(), "cpu": "a CPU", "command": "c",
               "measured": "2026-12-07", "environment": {"torch": "2", "threads": 1, "name": "native"},
               "commit": "0" * 40, "wall_seconds": 1.0}
    content["sha256"] = measured.digest(content)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(content))
    return path


def _grid(rho: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 88 + rng.normal(0, 0.3, (1, 6)) + rng.normal(0, 0.3 * rho, (6, 6))


def test_an_archive_is_read_with_its_checksum_and_an_edit_fails(tmp_path: Path) -> None:
    path = _archive(tmp_path, _grid(1.0))
    a = measured.load(path)
    assert np.asarray(a["accuracy"]).shape == (6, 6) and "a CPU" in measured.provenance_line(a)
    edited = json.loads(path.read_text())
    edited["accuracy"][2][3] += 0.01
    path.write_text(json.dumps(edited))
    with pytest.raises(measured.ArchiveError, match="does not match its SHA-256"):
        measured.load(path)
    with pytest.raises(measured.ArchiveError, match="not a readable archive"):
        measured.load(tmp_path / "missing.json")


def test_the_verdict_is_recomputed_from_the_matrix(tmp_path: Path) -> None:
    band, _, _ = study.similar_band()
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.05, (6, 6))
    k_effect, seed_effect = rng.normal(0, 1, (6, 1)), rng.normal(0, 1, (1, 6))
    for grid, verdict in ((88 + k_effect + noise, "extension"), (88 + seed_effect + noise, "refuted")):
        (c,) = measured.conv_claims(measured.spreads({"g": measured.load(_archive(tmp_path, grid))}), band)
        assert c.name == "conv: g: STD over k / STD over seeds" and c.verdict == verdict, c


def test_the_archived_grids_give_the_registrys_verdict() -> None:
    """The archives in book/measured: each loads (checksum), and the finding they are the evidence of
    gets the verdict the registry expects — a matrix whose verdict differs fails here."""
    found = measured.archives()
    assert set(found) == set(measured.specs()), "every grid of specs.yml is archived"
    band, _, _ = study.similar_band()
    claims = measured.conv_claims(measured.spreads(found), band)
    (f,) = [f for f in findings.load(findings.paths.REGISTRY) if f.id == "sgd-conv-rows"]
    rows = [{"name": c.name, "ours": c.ours, "verdict": c.verdict, "ok": c.ok, "sane": c.sane,
             "interval": c.interval} for c in claims]
    verdict, problem = findings.verdict_of(f, rows)
    assert problem == "" and verdict in findings.allowed(f, "default")
