# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Torch is pinned to the local CPU build through constraints-cpu.txt (pyproject.toml keeps a range).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install -q -c constraints-cpu.txt

.PHONY: demo test venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints-cpu.txt CMakeLists.txt $(wildcard csrc/*.?pp)
	$(PIP) -e '.[test]' -Ccmake.define.SRSDK_WERROR=ON
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(BIN)/srsdk demo

test: venv
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) demo-output build

# --- Training on a lent GPU machine (no network there; torch 2.11 is installed) ----------
# Here:  make gpu-stage    (copies the training photos into .device/, which git ignores)
# There: run(command="make gpu-train OUT=$OUT", carry=[".device"]) through the device tool;
#        the trained runs come back under $OUT, ready for `srsdk eval` and shipping.
# Size GPU_STEPS so four runs finish well inside one 600-second call: the log lines give
# the rate. A SIGTERM at the limit still saves a checkpoint and weights.
GPU_STEPS ?= 30000
GPU_DATA  := .device/data/train
GPU_TRAIN  = srsdk train --device cuda --threads 4 --steps $(GPU_STEPS) --batch 32 \
             --images $(GPU_DATA)/bsds500 --boundaries $(GPU_DATA)/bsds500_boundaries

.PHONY: gpu-stage gpu-train
gpu-stage:
	mkdir -p $(GPU_DATA)
	cp -r ../shared/data/train/bsds500 ../shared/data/train/bsds500_boundaries $(GPU_DATA)/

gpu-train:
	python3 -m pip install -q --no-build-isolation --no-deps -e .
	nvidia-smi --query-gpu=name,memory.total --format=csv
	$(GPU_TRAIN) --scale 2 -o $(OUT)/x2-multi > $(OUT)/x2-multi.log 2>&1 & \
	$(GPU_TRAIN) --scale 2 --single-task -o $(OUT)/x2-single > $(OUT)/x2-single.log 2>&1 & \
	$(GPU_TRAIN) --scale 3 --init srsdk/weights/srsdk_x2.safetensors -o $(OUT)/x3 > $(OUT)/x3.log 2>&1 & \
	$(GPU_TRAIN) --scale 4 --init srsdk/weights/srsdk_x2.safetensors -o $(OUT)/x4 > $(OUT)/x4.log 2>&1 & \
	wait
	tail -n 2 $(OUT)/*.log
