# batchkit — two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.batchkit-installed

.PHONY: test demo lint typecheck pytest bench clean serve

# Create the venv when missing and (re)install when pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check batchkit tests benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP)
	$(PY) -m pytest

test: lint typecheck pytest

# The main job: the incident replayed on the embedded local Batch emulator, no AWS account.
demo: $(STAMP)
	$(PY) -m batchkit demo

# The emulator alone, for the AWS CLI or any SDK.
serve: $(STAMP)
	$(PY) -m batchkit sim serve

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts
