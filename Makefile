# The two set-up commands: `make run` and `make test`. Both create .venv on first use and
# reinstall only when setup.cfg or pyproject.toml change.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint format reliability bench cluster-test clean

run: $(VENV)/.installed-run
	$(BIN)/authserver db upgrade
	exec $(BIN)/authserver serve

# The fast tier first (the OAuth layer in memory, a few seconds): a protocol mistake fails
# before the real servers start.
# Bytecode is written even where the environment says not to (PYTHONDONTWRITEBYTECODE): else
# every pytest worker rewrites every test module's assertions again, and every server and CLI
# process a test starts compiles the package from source.
# One pytest worker more than there are CPUs: about a third of the suite's time is spent
# waiting (servers starting, deadlines running out), which the extra worker fills.
TEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print(len(os.sched_getaffinity(0)) + 1)')
test: $(VENV)/.installed-test
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest tests/fast -q --confcutdir=tests/fast -p no:hypothesispytest -p no:schemathesis
	env -u PYTHONDONTWRITEBYTECODE $(BIN)/pytest -n $(TEST_WORKERS) --ignore=tests/fast

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy authserver deploy

reliability: $(VENV)/.installed-test
	$(BIN)/python -m deploy.reliability

bench: $(VENV)/.installed-bench
	$(BIN)/python -m deploy.bench

# The multi-host test (docs/deploy.md): three hosts, PostgreSQL, Redis and HAProxy, from the
# files in deploy/; needs root for network namespaces (else loopback addresses, said).
cluster-test: $(VENV)/.installed-test
	$(BIN)/python -m deploy.cluster

format: $(VENV)/.installed-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "authserver needs Python 3.11 or newer (PYTHON=$(PYTHON))" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: $(VENV)/bin/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[server]'
	@touch $@

$(VENV)/.installed-test: $(VENV)/bin/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@ $(VENV)/.installed-run

$(VENV)/.installed-bench: $(VENV)/bin/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	@touch $@ $(VENV)/.installed-test $(VENV)/.installed-run

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache .mypy_cache
