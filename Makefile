# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Torch is pinned to the local CPU build through constraints-cpu.txt (pyproject.toml keeps a range).
SHELL  := /bin/bash
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install -q -c constraints-cpu.txt

.PHONY: demo test venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints-cpu.txt CMakeLists.txt $(wildcard csrc/*.?pp csrc/cuda/*.cu)
	$(PIP) -e '.[test,bench,video]' -Ccmake.define.SRSDK_WERROR=ON
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(BIN)/srsdk demo

test: venv
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) demo-output build

# The native tiling tests against an AddressSanitizer build of srsdk._native, then back to
# the normal build. libstdc++ is preloaded too: python does not link it, and ASan's
# exception interceptor needs it loaded first.
.PHONY: asan
asan: venv
	$(PIP) --no-deps -e . -Ccmake.define.SRSDK_ASAN=ON -Cbuild-dir=build/asan
	LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libstdc++.so)" \
	  ASAN_OPTIONS=detect_leaks=0 $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_tiling.py; \
	  status=$$?; $(PIP) --no-deps -e . -Ccmake.define.SRSDK_WERROR=ON; exit $$status

# --- A lent GPU machine (no network there; torch 2.11, pytest, cuda-bindings installed) ---
# Here:  make gpu-stage    (copies training photos and Set5/Set14 into .device/, git-ignored)
# There: run(command="make gpu-check OUT=$OUT", carry=[".device"]) through the device tool:
#        CUDA tests + GPU benchmarks, JSON under $OUT (about 2 minutes; see benchmarks/README.md).
#        run(command="make gpu-train OUT=$OUT", carry=[".device"]) trains instead.
# Size GPU_STEPS so four runs finish well inside one 600-second call: the log lines give
# the rate. A SIGTERM at the limit still saves a checkpoint and weights.
GPU_STEPS ?= 30000
GPU_DATA  := $(abspath .device/data)
GPU_PY    := python3
GPU_TRAIN  = srsdk train --device cuda --threads 4 --steps $(GPU_STEPS) --batch 32 \
             --images $(GPU_DATA)/train/bsds500 --boundaries $(GPU_DATA)/train/bsds500_boundaries

.PHONY: gpu-stage gpu-install gpu-check gpu-train
gpu-stage:
	mkdir -p $(GPU_DATA)/train $(GPU_DATA)/eval
	cp -r ../shared/data/train/bsds500 ../shared/data/train/bsds500_boundaries $(GPU_DATA)/train/
	cp -r ../shared/data/eval/set5 ../shared/data/eval/set14 $(GPU_DATA)/eval/

gpu-install:
	$(GPU_PY) -m pip install -q --no-build-isolation --no-deps -e .
	mkdir -p $(OUT)/engines
	nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee $(OUT)/nvidia-smi.csv

gpu-check: gpu-install
	set -o pipefail; SRSDK_SHARED_DATA=$(GPU_DATA) PYTHONUNBUFFERED=1 $(GPU_PY) -m pytest -q -p no:cacheprovider \
	  -m gpu --junitxml=$(OUT)/gpu-tests.xml tests 2>&1 | tee $(OUT)/gpu-tests.log
	$(GPU_PY) benchmarks/tiling.py --device cuda --json $(OUT)/tiling-cuda.json
	for s in 2 3 4; do $(GPU_PY) -m srsdk build-engine --scale $$s --fp16 --backend torchscript \
	  --quality-set $(GPU_DATA)/eval/set5 -o $(OUT)/engines/x$$s-fp16.ts > $(OUT)/build-x$$s-fp16.json || exit; done
	$(GPU_PY) benchmarks/engine_latency.py --engine $(OUT)/engines/x2-fp16.ts --size 1920x1080 \
	  --json $(OUT)/engine-latency-x2-fp16.json
	$(GPU_PY) -m srsdk bench --device cuda --sizes 960x540,1920x1080 --frames 50 --json $(OUT)/bench-gpu-eager-fp16.json
	$(GPU_PY) -m srsdk bench --device cuda --sizes 960x540,1920x1080 --frames 50 --cuda-graphs \
	  --json $(OUT)/bench-gpu-eager-fp16-graphs.json --plot $(OUT)/bench-gpu.png
	$(GPU_PY) -m srsdk bench --device cuda --precision fp32 --sizes 960x540,1920x1080 --frames 50 \
	  --json $(OUT)/bench-gpu-eager-fp32.json
	$(GPU_PY) -m srsdk bench --device cuda --engine $(OUT)/engines/x2-fp16.ts --sizes 960x540,1920x1080 \
	  --frames 50 --json $(OUT)/bench-gpu-torchscript-fp16.json
	$(GPU_PY) -m srsdk bench --device cuda --engine $(OUT)/engines/x2-fp16.ts --sizes 960x540,1920x1080 \
	  --frames 50 --cuda-graphs --json $(OUT)/bench-gpu-x2.json

gpu-train: gpu-install
	$(GPU_TRAIN) --scale 2 -o $(OUT)/x2-multi > $(OUT)/x2-multi.log 2>&1 & \
	$(GPU_TRAIN) --scale 2 --single-task -o $(OUT)/x2-single > $(OUT)/x2-single.log 2>&1 & \
	$(GPU_TRAIN) --scale 3 --init srsdk/weights/srsdk_x2.safetensors -o $(OUT)/x3 > $(OUT)/x3.log 2>&1 & \
	$(GPU_TRAIN) --scale 4 --init srsdk/weights/srsdk_x2.safetensors -o $(OUT)/x4 > $(OUT)/x4.log 2>&1 & \
	wait
	tail -n 2 $(OUT)/*.log
