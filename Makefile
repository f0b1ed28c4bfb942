# The two commands of the README: `make book` and `make test`. Both create .venv/ on first use and install the
# project into it from its own files. torch is installed first, on its own, so pip does not resolve it to the
# multi-GB CUDA wheels: override TORCH_SPEC for another build, e.g.
#   make book TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cpu"
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
RUN_ARGS ?=
BIN := $(VENV)/bin

.PHONY: book test install clean

book: $(VENV)/.installed
	$(BIN)/edge-audio run $(RUN_ARGS)

test: $(VENV)/.installed
	$(BIN)/python -m pytest

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e ".[book,test]"
	touch $@

clean:
	rm -rf _build output
