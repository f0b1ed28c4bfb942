# The two commands of the README: `make book` and `make test`. Both create .venv/ on first use and install the
# project into it from its own files. torch is installed first, on its own, so pip does not resolve it to the
# multi-GB CUDA wheels: override TORCH_SPEC for another build, e.g.
#   make book TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cpu"
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
RUN_ARGS ?=
BIN := $(VENV)/bin

.PHONY: book test install clean firmware-tools browser-tools web

book: $(VENV)/.installed firmware-tools
	$(BIN)/edge-audio run $(RUN_ARGS)

# the main suite, then the Ray cluster suite (a head and a second node on 127.0.0.1, tests/test_cluster.py)
test: $(VENV)/.installed firmware-tools web
	$(BIN)/python -m pytest
	$(BIN)/python -m pytest -m cluster -n 0 tests/test_cluster.py

install: $(VENV)/.installed

# The system's tools, from Debian, installed when missing and this is root or has passwordless sudo; otherwise the
# one line to run. firmware-tools: the emulated boards (chapter 3, edge_audio.firmware; without them the book skips
# the boards and says so): Arm's cross compiler, newlib and QEMU. browser-tools: the browser demo (edge_audio.demo):
# npm, and Chromium for its test. Each entry is COMMAND:PACKAGE.
firmware-tools: TOOLS := arm-none-eabi-gcc:gcc-arm-none-eabi arm-none-eabi-gcc:libnewlib-arm-none-eabi \
	qemu-system-arm:qemu-system-arm
browser-tools: TOOLS := npm:npm chromium:chromium
firmware-tools browser-tools:
	@missing=""; for pair in $(TOOLS); do command -v $${pair%%:*} >/dev/null || missing="$$missing $${pair#*:}"; done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get install -y -q $$missing >/dev/null || \
	  (apt-get update -q >/dev/null && apt-get install -y -q $$missing >/dev/null); \
	elif sudo -n true 2>/dev/null; then sudo apt-get install -y -q $$missing >/dev/null; \
	else echo "$@ not installed:$$missing; run 'sudo apt-get install -y$$missing'"; fi

# The browser demo's runtime, ONNX Runtime Web from the npm registry, as pinned in its lock file (npm ci).
WEB := edge_audio/web
web: $(WEB)/node_modules/.package-lock.json
$(WEB)/node_modules/.package-lock.json: $(WEB)/package-lock.json | browser-tools
	npm ci --prefix $(WEB) --ignore-scripts --no-audit --no-fund --loglevel=error

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e ".[book,test]"
	touch $@

clean:
	rm -rf _build output
