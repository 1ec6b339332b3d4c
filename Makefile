# Portfolio Maximizer: the README's contract is `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

export PM_HOME      ?= $(CURDIR)/.pm
export DAGSTER_HOME ?= $(PM_HOME)/dagster_home
export VIRTUAL_ENV  := $(CURDIR)/$(VENV)
export PATH         := $(VIRTUAL_ENV)/bin:$(PATH)
# One BLAS thread per process: per-ticker work is parallelised across processes instead.
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
# LightGBM trains on every core through its own OpenMP threads. Spinning OpenMP workers stall
# for tens of seconds when other processes hold the cores (measured: 28 trees in 44 s instead
# of 0.4 s on 2 busy cores); passive workers sleep instead and cost nothing when idle.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: install browser demo test dev bench bench-venv check-defs dagster-home clean

# The venv is rebuilt when pyproject.toml changes.
$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(BIN)/.installed

dagster-home:
	@mkdir -p $(DAGSTER_HOME)
	@cp config/dagster.yaml $(DAGSTER_HOME)/dagster.yaml

demo: install dagster-home
	$(BIN)/python -m pm_jobs.demo

check-defs: install dagster-home
	$(BIN)/dg check defs

# Headless Chromium and its driver for the browser test (tests/integration/test_ui_browser.py),
# from the Debian packages: as root through apt-get, else through sudo when it needs no password.
# Nothing is downloaded at test time. Without them the test is skipped, or fails under CI=true.
CHROMIUM_BINARIES := /usr/bin/chromium /usr/bin/chromedriver
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
browser:
	@if ls $(CHROMIUM_BINARIES) >/dev/null 2>&1; then exit 0; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
	  echo "make browser: no apt-get here; install Chromium and chromedriver as $(CHROMIUM_BINARIES) for the browser test" >&2; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "make browser: installing the Debian packages chromium and chromium-driver"; \
	  { apt-get update -qq && $(APT_INSTALL); } || echo "make browser: apt-get failed; the browser test is skipped, or fails under CI=true" >&2; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
	  echo "make browser: installing the Debian packages chromium and chromium-driver (sudo)"; \
	  { sudo apt-get update -qq && sudo $(APT_INSTALL); } || echo "make browser: apt-get failed; the browser test is skipped, or fails under CI=true" >&2; \
	else \
	  echo "make browser: chromium and chromium-driver are missing and installing them needs root: run" >&2; \
	  echo "  sudo apt-get install chromium chromium-driver" >&2; \
	fi

test: install browser check-defs
	$(BIN)/python -m pytest -n 2 --dist loadfile

dev: install dagster-home
	$(BIN)/dg dev --host 127.0.0.1 --port 3000

# vectorbt, for the backtest benchmark's comparison only, in a venv of its own: its releases pin
# pandas >= 3 (and numba), which clash with the project's pandas < 3. A failed install (offline)
# does not stop `make bench`: benchmarks.backtest then says vectorbt was not run.
BENCH_VENV ?= .venv-bench
$(BENCH_VENV)/.installed:
	@test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet 'vectorbt>=1.2,<1.3'
	@touch $@

bench-venv: $(BENCH_VENV)/.installed

bench: install
	-@$(MAKE) --no-print-directory bench-venv
	$(BIN)/python -m benchmarks.ingest_validate
	$(BIN)/python -m benchmarks.features
	$(BIN)/python -m benchmarks.forecasting --tickers 400 --sample 12 --workers 2
	$(BIN)/python -m benchmarks.stored_fits --tickers 400 --workers 2
	$(BIN)/python -m benchmarks.ml
	$(BIN)/python -m benchmarks.signals
	$(BIN)/python -m benchmarks.backtest
	$(BIN)/python -m benchmarks.paper
	$(BIN)/python -m benchmarks.nightly
	$(BIN)/python -m benchmarks.pool_recovery --repeat 20

clean:
	rm -rf $(PM_HOME) .pytest_cache
