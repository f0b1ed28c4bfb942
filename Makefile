# The two commands of the README: `make book` and `make test`. Both create .venv/ on first use and install the
# project into it from its own files. torch is installed first, on its own, so pip does not resolve it to the
# multi-GB CUDA wheels: override TORCH_SPEC for another build, e.g.
#   make book TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cpu"
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
RUN_ARGS ?=
BIN := $(VENV)/bin

.PHONY: book test install tflite clean

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

# The optional TFLite toolchain (~1.2 GB), in its own step: resolved together with the book's dependencies pip
# backtracks for over 15 minutes. litert-torch pulls xdsl, which pins typing-extensions<4.13 and so breaks
# jupyter-client 8.10 (nbval, papermill); restoring typing-extensions keeps both working (checked: conversion and
# the LiteRT interpreter run, and the notebooks execute).
tflite: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet "litert-torch==0.10.0" "ai-edge-litert==2.3.0"
	$(BIN)/python -m pip install --quiet "typing-extensions>=4.13"

clean:
	rm -rf _build output
