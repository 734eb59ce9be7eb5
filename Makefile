# Two entry points for a fresh machine (see README): `make demo` and `make test`.
# Both create .venv on first use; torch is pinned to the CPU build through the constraints file.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup test demo clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c requirements/constraints.txt torch
	$(PY) -m pip install -q -c requirements/constraints.txt -e ".[test]"
	$(VENV)/bin/daecf fetch-sample
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/daecf demo --out out/demo

clean:
	rm -rf $(VENV) out .pytest_cache
