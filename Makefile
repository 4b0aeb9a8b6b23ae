# The two commands a fresh machine needs: `make demo` and `make test`.
VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.tailor-installed

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DVC_NO_ANALYTICS := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup demo test test-unit lint docs clean-state

setup: $(STAMP)

$(STAMP): pyproject.toml infra/constraints.txt infra/install.sh
	bash infra/install.sh
	touch $(STAMP)

# The suite includes tests/integration/project/test_docs_site.py, which builds the docs with --strict.
test: setup
	$(PY) -m pytest tests

# What tests/integration/project/test_code_style.py and test_import_contracts.py check, without the rest
# of the suite.
lint: setup
	$(VENV)/bin/ruff format --check . && $(VENV)/bin/ruff check . && $(VENV)/bin/lint-imports

# The unit layer alone: no processes, no sockets, no real base model (tests/unit/conftest.py), under a minute.
test-unit: setup
	$(PY) -m pytest tests/unit

demo: setup
	bash infra/demo.sh

# The documentation site, offline: reference pages are generated from the code at build time.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

clean-state:
	-$(VENV)/bin/tailor store stop
	rm -rf .tailor
