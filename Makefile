# aiprep developer tasks. `make install` is idempotent: it re-installs only when
# pyproject.toml changed since the last install.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-fast smoke lint schema docs bench check-coverage clean

install: $(STAMP)
	@# bytecode for the project's own files (pip compiled the dependencies): every process
	@# that runs a solution or the CLI imports them, PYTHONDONTWRITEBYTECODE set or not
	@$(BIN)/python -m compileall -q -j 0 src solutions tests > /dev/null || true  # a syntax error is the tests' to report

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## The main job: list the bank and run one reference solution.
demo: install
	$(BIN)/aiprep list
	$(BIN)/aiprep run training.cnn_image_classifier

## The whole test suite, reference solutions included, spread over the cores.
test: install
	$(BIN)/python -m pytest -n auto --durations=15

## Everything but the real training runs.
test-fast: install
	$(BIN)/python -m pytest -m "not slow"

## Every reference solution, in parallel and isolated: JUnit for CI, JSON for the tests
## (AIPREP_SMOKE_REPORT=smoke.json make test reads the references' results from it).
smoke: install
	$(BIN)/aiprep smoke --junit smoke-junit.xml --json smoke.json

## Style, types, the content linter, the committed JSON Schemas and README table current.
lint: install
	$(BIN)/ruff check src solutions tests
	$(BIN)/ruff format --check src solutions tests
	$(BIN)/mypy
	$(BIN)/aiprep validate
	$(BIN)/aiprep schema | diff -u schema/question.schema.json - \
		|| { echo "schema/question.schema.json is stale: run make schema"; exit 1; }
	$(BIN)/aiprep schema --export | diff -u schema/export.schema.json - \
		|| { echo "schema/export.schema.json is stale: run make schema"; exit 1; }
	$(BIN)/python -m aiprep._docs --check

## The README's command table, from the commands' own parameters and help.
docs: install
	$(BIN)/python -m aiprep._docs

## Regenerate the JSON Schemas: question files (for YAML editors) and JSON exports.
schema: install
	$(BIN)/aiprep schema > schema/question.schema.json
	$(BIN)/aiprep schema --export > schema/export.schema.json

## For authors: run every wrong answer (fixtures and generated stubs) against every check;
## writes tests/check_coverage.json, which the tests hold to (>= 80 %, the rest guards).
check-coverage: install
	$(BIN)/aiprep check-coverage --json tests/check_coverage.json --min 80

bench: install
	$(BIN)/python -m aiprep._bench

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
