# The two commands a newcomer needs:  make run   (local webhook, no cluster)   and   make test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint e2e bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/dynatrace-webhook --state-file examples/local-state.yaml --certs-dir .local/certs --log-format text

# unit tests, then the e2e tier (tests/e2e/run-local-cluster.sh: KUBECONFIG, else ../shared/k8s, else skipped);
# both always run, each prints its pytest summary; the target fails when either failed (exit 5, no tests, too)
test: $(STAMP)
	@unit=0; $(BIN)/pytest -q --ignore=tests/e2e || unit=$$?; \
	[ $$unit != 5 ] || echo "unit tests: pytest collected no tests" >&2; \
	e2e=0; bash tests/e2e/run-local-cluster.sh $(BIN)/pytest || e2e=$$?; \
	[ $$unit = 0 ] && [ $$e2e = 0 ] || { echo "make test: FAILED (unit tests exit $$unit, e2e tier exit $$e2e)" >&2; exit 1; }

lint: $(STAMP)
	$(BIN)/ruff check webhook tests bench
	$(BIN)/ruff format --check webhook tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# every bench goal, each beside its baseline from the same run; fails on a figure 20 % worse than bench/reference.json
bench: $(STAMP)
	$(BIN)/python -m bench.gate

e2e: $(STAMP)
	bash tests/e2e/run-local-cluster.sh $(BIN)/pytest

clean:
	rm -rf $(VENV) .local .pytest_cache .mypy_cache .ruff_cache
