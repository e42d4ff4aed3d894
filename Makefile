# instab — two commands do everything on a fresh machine:
#   make book   [PARAMS=default|ci|paper] [JOBS=cores]
#                                           set up, execute the chapters, render _build/html (and its PDF)
#   make pdf                                the rendered book as one PDF, _build/html/instab.pdf
#   make test                               set up, unit tests, the training tests again under a second
#                                           floating-point environment, ci-scale book and its checks
#                                           (in a browser too), nbval
#   make unit                               lint and unit tests only (no browser set-up)
#   make quick                              the same without the slow tests: a contributor's loop
#   make robust [PARAMS=default]            the ci book (default: its chaotic chapters) under other floating-point environments
#   make measured                           re-run the archived conv-net grids (book/measured/), compare bit for bit
#   make lock   [UPGRADE=1]                 recompile requirements/lock.txt (and the files made from it)
#   make release [PARAMS=default]           the built book, every chapter's results and notebook, the lock:
#                                           _build/release/instab-<version>-<scale>.tar.gz with a SHA-256 manifest
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PARAMS ?= default
# Cores for `make book`: chapters run side by side while their grids' worker processes fit
JOBS ?= $(shell nproc 2>/dev/null || echo 1)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.instab-installed
# Every dependency pinned with its hashes, for Python 3.11 on Linux x86_64 (make lock writes it)
LOCK := requirements/lock.txt
LOCK_PYTHON ?= python3.11
LOCK_VENV := .venv-lock
PIP_TOOLS := pip-tools==7.6.2
DATA ?= data
# The FFT loops of the PDE chapters allocate and free ~MB arrays every step: glibc's defaults
# return that memory to the kernel (munmap, or trimming the heap's top) and fault it in again at
# the next step.  Kept in the heap, system time falls: linear 97 s -> 34 s, 58 s of it system
# time -> 0.6 s (results unchanged).  The values are instab.determinism.MALLOPT (the driver sets them too).
export MALLOC_MMAP_THRESHOLD_ ?= 33554432
export MALLOC_TRIM_THRESHOLD_ ?= 1073741824

.PHONY: setup venv browser lock book pdf test unit quick fpenv nbval robust measured release lint clean

setup: venv browser

# What the unit tests need: the virtual environment and the data (chromium is for the book checks)
venv: $(STAMP)
	@echo "==> [setup] data: Fashion-MNIST under $(DATA)/FashionMNIST/raw"
	@$(PY) -m instab.datasets prepare --root $(DATA)

# The browser test (tests/test_browser.py) opens the built book in Debian's chromium through
# chromedriver; installed with apt-get (as root) when chromedriver is missing.
APT_BROWSER := DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver
browser:
	@command -v chromedriver >/dev/null || { \
	  echo "==> [setup] chromium and chromium-driver for the browser test (apt-get)"; \
	  $(APT_BROWSER) || { apt-get update -qq && $(APT_BROWSER); } || { \
	    echo "error: could not install chromium and chromium-driver: run as root, or install them" \
	         "yourself (apt-get install chromium chromium-driver)" >&2; exit 1; }; }

$(STAMP): $(LOCK) pyproject.toml
	@echo "==> [setup] virtual environment $(VENV) from $(LOCK), every file's hash checked (torch is large: a few minutes)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --disable-pip-version-check -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	@$(PY) -m pip install --disable-pip-version-check --progress-bar on --require-hashes -r $(LOCK) 2>&1 \
	    | { grep -v '^WARNING: Location' || true; }
	@$(PY) -m pip install --disable-pip-version-check -q --no-deps -e . 2>&1 | { grep -v '^WARNING: Location' || true; }
	@$(PY) -c "import torch, torchvision, jupyter_book, papermill, nbval, distributed, submitit, mypy; print('    torch', torch.__version__, 'torchvision', torchvision.__version__)"
	@touch $(STAMP)

# The lock: pyproject.toml's dependencies and extras book, test and cluster, resolved by pip-tools
# under $(LOCK_PYTHON) against PyPI whatever pip's configuration says (its hashes are PyPI's
# files), then environment.yml, .binder/requirements.txt and .binder/runtime.txt written from it.
# Pins already in the lock are kept unless pyproject.toml rules them out; UPGRADE=1 re-resolves all.
lock:
	@$(LOCK_PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else \
	    "error: the lock is for Python 3.11; set LOCK_PYTHON=<a python3.11>")'
	@echo "==> [lock] $(LOCK) from pyproject.toml with $(PIP_TOOLS) (pip-compile --generate-hashes)"
	@test -x $(LOCK_VENV)/bin/pip-compile || { $(LOCK_PYTHON) -m venv $(LOCK_VENV) && \
	    PIP_CONFIG_FILE=/dev/null $(LOCK_VENV)/bin/python -m pip install -q '$(PIP_TOOLS)'; }
	@mkdir -p $(dir $(LOCK))
	@env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL -u PIP_CONSTRAINT PIP_CONFIG_FILE=/dev/null \
	    CUSTOM_COMPILE_COMMAND="make lock" $(LOCK_VENV)/bin/pip-compile \
	    --quiet --generate-hashes --allow-unsafe --strip-extras --extra book --extra test --extra cluster \
	    --index-url https://pypi.org/simple --no-emit-index-url --no-emit-find-links $(if $(UPGRADE),--upgrade) \
	    --output-file $(LOCK) pyproject.toml
	@$(LOCK_PYTHON) -m instab.lockfile write

book: setup
	@echo "==> [book] execute and render the chapters at scale '$(PARAMS)'"
	@$(PY) -m instab.book build --params $(PARAMS) --jobs $(JOBS)

# The whole book as one PDF (_build/html/instab.pdf): the rendered book joined into one page and
# printed by chromium, offline (instab/book/pdf.py says why not LaTeX).  `make book` makes it too.
pdf: setup
	@echo "==> [pdf] print the rendered book to _build/html/instab.pdf"
	@$(PY) -m instab.book pdf --params $(PARAMS)

unit: venv
	@echo "==> [test 1/4] ruff and mypy, then the unit tests"
	@$(PY) -m ruff check instab tests benchmarks
	@$(PY) -m mypy
	@$(PY) -m pytest -q -m "not book" tests

# The quick loop: lint and the unit tests but the slow ones (grids, kills, benchmarks)
quick: venv
	@$(PY) -m ruff check instab tests benchmarks
	@$(PY) -m mypy
	@$(PY) -m pytest -q -m "not book and not slow" tests

# The tests that train or simulate (marker `trains`), once more under a second floating-point
# environment (instab.determinism.second_environment: other kernels, other last bits): a test that
# holds only for this CPU's bits fails here too, not only on a reader's CPU.
fpenv: venv
	@echo "==> [test 2/4] the tests that train or simulate, again under floating-point environment" \
	    "'$$($(PY) -c 'from instab.determinism import second_environment as e; print(e())')'"
	@env $$($(PY) -m instab.determinism env-args) $(PY) -m pytest -q -p no:cacheprovider -m "trains and not slow and not book" tests

nbval: setup
	@echo "==> [test 4/4] nbval: re-execute every ci-scale chapter, outputs must match bit for bit"
	@INSTAB_CACHE=$$(mktemp -d) OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -q --nbval --nbval-sanitize-with tests/nbval-sanitize.cfg \
	    -p no:cacheprovider -n 2 --dist loadfile _build/executed/ci/*/*.ipynb

test: unit fpenv browser
	@echo "==> [test 3/4] build the book at the ci scale and check the HTML"
	@$(PY) -m instab.book build --params ci --jobs 2
	@echo "==>      ruff over the chapters as executed (converted notebooks), then checks on the book"
	@$(PY) -m ruff check _build/converted/ci/*.ipynb
	@$(PY) -m pytest -q -m book tests
	@$(MAKE) --no-print-directory nbval

# make robust: the ci book.  `make robust PARAMS=default` runs the chapters whose findings rest on
# chaotic runs (the perturbed-SGD chapters, the open questions, multilayer) at the default scale
# under every environment (about 3 × their default build time: run it in the background, once per
# change of a rule).  A finding whose verdict a scale's ensemble cannot decide the same way on every
# CPU is expected "inconclusive" there, or listed with its alternatives (the book then does not
# decide it at that scale, and its page says so).
ROBUST_PARAMS := $(if $(filter command line environment,$(origin PARAMS)),$(PARAMS),ci)
ROBUST_CHAPTERS_default := sgd_growth sgd_variance sgd_threshold open_questions multilayer
robust: setup
	@echo "==> [robust] the $(ROBUST_PARAMS) book$(if $(ROBUST_CHAPTERS_$(ROBUST_PARAMS)), ($(ROBUST_CHAPTERS_$(ROBUST_PARAMS))),) under every other floating-point environment: every claim must keep its verdict"
	@$(PY) -m instab.book robust --params $(ROBUST_PARAMS) --jobs 2 $(foreach c,$(ROBUST_CHAPTERS_$(ROBUST_PARAMS)),--chapter $(c))

# make measured: the grids too long for a build (book/measured/specs.yml: conv nets on the CPU) run
# again and compared with their archives, bit for bit (the same CPU model is needed; the archive says
# which).  `python -m instab.studies.measured run NAME` writes an archive; the book reads them.
measured: venv
	@echo "==> [measured] re-run the archived grids of book/measured/ and compare them bit for bit (long: ~30 min)"
	@$(PY) -m instab.studies.measured check --workers $(JOBS)

# make release: the book (built first, or reused when up to date), each chapter's executed notebook
# and results.json, the lock, the registry, the citation, the changelog and the licences in one
# archive named with pyproject.toml's version, its SHA256SUMS inside and <archive>.sha256 beside it.
release: book
	@echo "==> [release] archive of the $(PARAMS) book, version $$($(PY) -m instab.book.release version)"
	@$(PY) -m instab.book.release archive --params $(PARAMS)

lint: venv
	@$(PY) -m ruff check instab tests benchmarks
	@$(PY) -m mypy

clean:
	rm -rf _build
