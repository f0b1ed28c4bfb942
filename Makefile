# The two commands of the README: `make book` and `make test`. Both create .venv/ on first use and install the
# project into it from its own files. torch is installed first, on its own, so pip does not resolve it to the
# multi-GB CUDA wheels: override TORCH_SPEC for another build, e.g.
#   make book TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cpu"
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
RUN_ARGS ?=
BIN := $(VENV)/bin

.PHONY: book test install clean firmware-tools

book: $(VENV)/.installed firmware-tools
	$(BIN)/edge-audio run $(RUN_ARGS)

# the main suite, then the Ray cluster suite (a head and a second node on 127.0.0.1, tests/test_cluster.py)
test: $(VENV)/.installed firmware-tools
	$(BIN)/python -m pytest
	$(BIN)/python -m pytest -m cluster -n 0 tests/test_cluster.py

install: $(VENV)/.installed

# The emulated boards (chapter 3, edge_audio.firmware): Debian's Arm cross compiler, newlib and QEMU. Installed
# when missing and this is root or has passwordless sudo; otherwise the one line to run (the book then skips the
# emulated boards and says so).
FIRMWARE_PACKAGES := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
firmware-tools:
	@if command -v arm-none-eabi-gcc >/dev/null && command -v qemu-system-arm >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get install -y -q $(FIRMWARE_PACKAGES) >/dev/null || \
	  (apt-get update -q >/dev/null && apt-get install -y -q $(FIRMWARE_PACKAGES) >/dev/null); \
	elif sudo -n true 2>/dev/null; then sudo apt-get install -y -q $(FIRMWARE_PACKAGES) >/dev/null; \
	else echo "emulated boards skipped: run 'sudo apt-get install -y $(FIRMWARE_PACKAGES)'"; fi

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e ".[book,test]"
	touch $@

clean:
	rm -rf _build output
