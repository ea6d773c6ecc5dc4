# One command proves the tree healthy: `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: venv test check pytest chaos format demo bench bench-smoke clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP) check pytest

check: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# The slow fault-injection runs (marked `chaos`) are left to `make chaos`.
pytest: $(STAMP)
	$(PY) -m pytest -W error -q -m "not chaos" $(PYTEST_ARGS)

# Faults that take minutes: a database stopped under load, a worker killed and paused,
# pools exhausted, and the large schemathesis and hypothesis runs (docs/reliability.md).
chaos: $(STAMP)
	TIMELINE_CHAOS=1 $(PY) -m pytest -W error -q -m chaos tests/chaos tests/reliability tests/projections $(PYTEST_ARGS)

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

demo: $(STAMP)
	$(VENV)/bin/timeline demo

# The benchmark suite (docs/benchmarks.md): every scenario next to its baseline in the
# same run. `make bench` is the full run (1,000,000 events; PostgreSQL on 127.0.0.1:5432,
# wrk installed); `make bench-smoke` is the minute-long size that CI runs in `make test`.
BENCH_EVENTS ?= 1000000
bench: $(STAMP)
	$(PY) -m bench.suite --events $(BENCH_EVENTS)

bench-smoke: $(STAMP)
	$(PY) -m bench.suite --smoke

clean:
	rm -rf $(VENV) .timeline .mypy_cache .pytest_cache .ruff_cache
