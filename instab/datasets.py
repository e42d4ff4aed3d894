"""Make the data sets available on disk (set-up step of ``make``; no torch needed).

Fashion-MNIST: torchvision's ``FashionMNIST(root, download=False)`` reads the four IDX files
uncompressed under ``root/FashionMNIST/raw/``.  They come, in order of preference, from

1. the Debian package ``dataset-fashion-mnist`` (gzip IDX files under /usr/share/datasets),
   installed with apt-get when it is missing and apt-get can be run (as root);
2. torchvision's own download (needs the internet).

CIFAR-10 is left to torchvision's download (``instab.data`` asks for it when used).

Usage: ``python -m instab.datasets prepare --root data``
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

FASHION_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                 "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
#: Size and SHA-256 of each uncompressed IDX file, as published (Zalando's files, unpacked from Debian's
#: ``dataset-fashion-mnist``; the sizes follow from the IDX headers: 60,000 and 10,000 28×28 images).
FASHION_SHA256 = {
    "train-images-idx3-ubyte": (47040016, "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    "train-labels-idx1-ubyte": (60008, "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    "t10k-images-idx3-ubyte": (7840016, "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    "t10k-labels-idx1-ubyte": (10008, "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}
DEBIAN_PACKAGE = "dataset-fashion-mnist"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


def fashion_raw_dir(root: str | Path) -> Path:
    return Path(root) / "FashionMNIST" / "raw"


def fashion_problems(root: str | Path) -> dict[str, str]:
    """{file: what is wrong} for each Fashion-MNIST IDX file under ``root`` that is missing, or
    whose size or SHA-256 is not the published one (:data:`FASHION_SHA256`); ``{}`` when all are."""
    raw = fashion_raw_dir(root)
    out = {}
    for f in FASHION_FILES:
        size, sha = FASHION_SHA256[f]
        path = raw / f
        if not path.is_file():
            out[f] = "missing"
        elif path.stat().st_size != size:
            out[f] = f"{path.stat().st_size} bytes, not {size}"
        elif hashlib.sha256(path.read_bytes()).hexdigest() != sha:
            out[f] = "SHA-256 differs from the published file's"
    return out


def fashion_ready(root: str | Path) -> bool:
    """Whether every IDX file is there, whole and unaltered (:func:`fashion_problems`)."""
    return not fashion_problems(root)


def _debian_dir() -> Path | None:
    if all((DEBIAN_DIR / f"{f}.gz").is_file() for f in FASHION_FILES):
        return DEBIAN_DIR
    try:
        listing = subprocess.run(["dpkg", "-L", DEBIAN_PACKAGE], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return None
    for line in listing.splitlines():
        if line.endswith(f"{FASHION_FILES[0]}.gz"):
            return Path(line).parent
    return None


def _apt_install() -> bool:
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return False
    print(f"    installing the Debian package {DEBIAN_PACKAGE} with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(["apt-get", "install", "-y", "-q", DEBIAN_PACKAGE], env=env).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env)
        return subprocess.run(["apt-get", "install", "-y", "-q", DEBIAN_PACKAGE], env=env).returncode == 0
    return True


def prepare_fashion_mnist(root: str | Path, *, allow_apt: bool = True, allow_download: bool = True) -> Path:
    """Ensure the uncompressed Fashion-MNIST IDX files exist under ``root/FashionMNIST/raw``."""
    raw = fashion_raw_dir(root)
    problems = fashion_problems(root)
    if not problems:
        print(f"    Fashion-MNIST already in {raw} (sizes and SHA-256 checked)", flush=True)
        return raw
    for f, why in problems.items():
        if why != "missing":
            print(f"    {raw / f}: {why}: unpacking it again", flush=True)
    src = _debian_dir()
    if src is None and allow_apt and _apt_install():
        src = _debian_dir()
    if src is not None:
        raw.mkdir(parents=True, exist_ok=True)
        for f in problems:
            tmp = raw / f"{f}.tmp"
            with gzip.open(src / f"{f}.gz", "rb") as fin, open(tmp, "wb") as fout:
                shutil.copyfileobj(fin, fout)
            tmp.replace(raw / f)
        left = fashion_problems(root)
        if left:
            raise RuntimeError(f"Fashion-MNIST unpacked from {src} into {raw} is not the published data: "
                               + "; ".join(f"{f}: {why}" for f, why in left.items()))
        print(f"    Fashion-MNIST unpacked from {src} into {raw} (sizes and SHA-256 checked)", flush=True)
        return raw
    if allow_download:
        try:
            from torchvision.datasets import FashionMNIST

            for train in (True, False):
                FashionMNIST(str(root), train=train, download=True)
            return raw
        except Exception as e:  # noqa: BLE001 - reported below with the remedy
            reason = f"torchvision's download failed ({e})"
    else:
        reason = "downloading is disabled"
    raise RuntimeError(
        f"Fashion-MNIST is not available: the Debian package {DEBIAN_PACKAGE} is not installed and "
        f"could not be installed (needs apt-get as root), and {reason}. Install it with "
        f"`apt-get install {DEBIAN_PACKAGE}`, or put the four IDX files "
        f"({', '.join(FASHION_FILES)}) under {raw}.")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m instab.datasets")
    ap.add_argument("action", choices=["prepare"])
    ap.add_argument("--root", default="data", help="data folder (default: data)")
    ap.add_argument("--no-apt", action="store_true")
    ap.add_argument("--no-download", action="store_true")
    a = ap.parse_args(argv)
    try:
        prepare_fashion_mnist(a.root, allow_apt=not a.no_apt, allow_download=not a.no_download)
    except RuntimeError as e:
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    main()
