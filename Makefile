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

test: $(STAMP)
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check webhook certs tests bench
	$(BIN)/ruff format --check webhook certs tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

e2e: $(STAMP)
	$(BIN)/pytest -q -m e2e tests/e2e

clean:
	rm -rf $(VENV) .local .pytest_cache .mypy_cache .ruff_cache
