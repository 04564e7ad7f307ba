# Two commands: `make run` and `make test`. Both create .venv when it is missing.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PYTHON ?= $(shell for v in python3 python3.12 python3.13 "env PYENV_VERSION=3.12.1 python3" "env PYENV_VERSION=3.13.0 python3"; do \
	$$v -c 'import sys; sys.exit(sys.version_info < (3, 12))' >/dev/null 2>&1 && { echo $$v; exit; }; done)

.PHONY: run test venv clean browser

$(VENV)/.installed: pyproject.toml
	@if [ -z "$(PYTHON)" ]; then echo "make: no Python >= 3.12 found (Mesa 3.5 needs it); install one, e.g. 'pyenv install 3.12'" >&2; exit 2; fi
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

venv: $(VENV)/.installed

run: venv
	$(VENV)/bin/abm run --overwrite

browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1)) \
	      || echo "make: could not install chromium; browser tests will be skipped"; \
	  else echo "make: chromium missing and apt-get not usable; browser tests will be skipped"; fi; }

test: venv browser
	$(PY) -m pytest -q -n 2 --dist loadfile

clean:
	rm -rf $(VENV) build dist *.egg-info
