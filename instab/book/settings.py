"""The driver's settings, resolved once (by :func:`instab.book.cli.main`) and passed down: the build
folder (``$INSTAB_BUILD``), the grid cache the chapters use (``$INSTAB_CACHE``, or a
floating-point environment's own), the engine of their grids (``$INSTAB_EXECUTOR``) and the
environment they run in; and the one place that writes what the chapters' kernels (and the driver
processes ``--jobs`` and ``robust`` start) inherit through the environment (:meth:`Settings.export`)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from instab import paths
from instab.book import sources
from instab.determinism import MALLOPT
from instab.executors import environment_spec

#: One BLAS thread in the chapters' kernels (torch pins its own threads through instab.determinism).
BLAS_THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: glibc's allocator for the kernels, as environment variables (read at a process's start): the
#: settings of :func:`instab.determinism.keep_freed_memory`, which the torch chapters apply in
#: process too; the PDE chapters (NumPy only) get them from here.  No number depends on them.
MALLOC = {f"MALLOC_{name[2:]}_": str(value) for name, value in MALLOPT.items()}
#: How long one chapter may run (``--timeout``), for the chapters' processes
#: (:func:`instab.book.execution.execution_timeout`).
TIMEOUT_VAR = "INSTAB_EXECUTION_TIMEOUT"


@dataclass(frozen=True)
class Settings:
    """What one run of the driver works with, read from the environment once (:meth:`resolve`)."""

    #: The native build folder: ``$INSTAB_BUILD``, else ``<repository>/_build``.
    build: Path
    #: The grid cache of the chapters' kernels: a non-native environment's own
    #: (``<build>/robust/<env>/cache``), else ``$INSTAB_CACHE`` or ``<build>/cache``.
    cache: Path
    #: ``$INSTAB_EXECUTOR``, validated here before any work (None: unset), the engine of the
    #: chapters' grids; the kernels inherit the variable (:func:`instab.executors.environment_spec`).
    executor: str | None
    #: The floating-point environment the chapters run in (:data:`instab.determinism.ENVIRONMENTS`).
    env: str = "native"
    #: ``--timeout``, given to the chapters' processes as ``$INSTAB_EXECUTION_TIMEOUT`` (None: as set).
    timeout: str | None = None

    @classmethod
    def resolve(cls, env: str = "native", timeout: str | None = None) -> Settings:
        """The settings from the environment (:mod:`instab.paths` reads the folders' variables)."""
        build = paths.build_root()
        cache = sources.build_root(env, build) / "cache" if env != "native" else paths.cache_root()
        return cls(build=build, cache=cache, executor=environment_spec(), env=env, timeout=timeout)

    def root(self, env: str | None = None) -> Path:
        """The build folder of ``env`` (default: this run's): :attr:`build` for native, else its
        ``robust/<env>`` (:func:`instab.book.sources.build_root`)."""
        return sources.build_root(self.env if env is None else env, self.build)

    def export(self, kernels: bool = False) -> None:
        """Write what the processes this one starts inherit: the allocator settings and one BLAS
        thread (a user's own kept), ``--timeout``, and for a non-native environment its variables
        and grid cache (native: the environment as the user set it; its key goes into every
        cache key); with ``kernels`` (this process executes chapters) ``$IPYTHONDIR``, the folder
        of the kernels' start-up file (:func:`instab.book.downloads.use_kernel_startup`).

        Raises ``RuntimeError`` for a non-native environment once torch is imported."""
        from instab.determinism import environment_vars

        for var, value in MALLOC.items():
            os.environ.setdefault(var, value)
        for var in BLAS_THREADS:  # NumPy/SciPy's BLAS sums in one fixed order
            os.environ.setdefault(var, "1")
        if self.timeout is not None:
            os.environ[TIMEOUT_VAR] = self.timeout
        if self.env != "native":
            if "torch" in sys.modules:
                raise RuntimeError("a floating-point environment must be selected before torch is imported")
            for var, value in environment_vars(self.env).items():
                if value:
                    os.environ[var] = value
                else:
                    os.environ.pop(var, None)
            os.environ["INSTAB_CACHE"] = str(self.cache)
        if kernels:
            os.environ["IPYTHONDIR"] = str(self.root() / "ipython")
