# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Torch is pinned to the local CPU build through constraints-cpu.txt (pyproject.toml keeps a range).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install -q -c constraints-cpu.txt

.PHONY: demo test venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints-cpu.txt CMakeLists.txt
	$(PIP) -e '.[test]'
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(BIN)/srsdk demo

test: venv
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) demo-output build
