# The two commands of the README, and the benchmarks. Each sets up the virtual environment first.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

# No internet here, and the temporary Prefect API server is slow on its first start.
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 90

.PHONY: demo test bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

# A rollout of the example inventory against the built-in NCP simulator, through Prefect.
demo: $(VENV)/.installed
	$(VENV)/bin/fleet provision inventories/demo.csv --simulator --wait

# Lint, type-check, build the documentation site (--strict: a broken link fails) and run the
# whole test suite: in four workers (pytest-xdist), then, alone, the few tests that measure a rate
# in real time (marked serial). Four on two cores: most tests wait (on a listing's lag, a
# subprocess, a Prefect server), so the suite took 4.7 minutes here, against 8.4 in two workers and
# 12.7 in one. Work stealing keeps a worker from idling behind another's long tests. The site goes
# to site/, which git ignores.
TEST_WORKERS ?= 4
test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site
	$(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal -m "not serial"
	$(PY) -m pytest -m serial

bench: $(VENV)/.installed
	$(PY) bench/bench_inventory.py
	$(PY) bench/bench_throughput.py
	$(PY) bench/bench_shared_limit.py
	$(PY) bench/bench_rollout.py
