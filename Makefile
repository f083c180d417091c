# FlareWatch: `make demo` runs the daily pipeline end to end on the local stack; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.flarewatch-installed
# Install from the package registry only: a machine-wide pip config may point at a CPU-only torch
# wheel that breaks the registry's torchvision (see README, "Install").
PIP_ENV := PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= PIP_DISABLE_PIP_VERSION_CHECK=1
FW := $(PY) -m flarewatch.cli
# Offline hygiene: ultralytics/matplotlib write settings and caches under the state folder, not $HOME.
export YOLO_CONFIG_DIR := $(CURDIR)/.state/ultralytics
export YOLO_OFFLINE := 1
export MPLCONFIGDIR := $(CURDIR)/.state/cache/matplotlib

.PHONY: help venv demo report test lint test-unit test-reliability up down status psql summary env clean-state evaluate bench bench-memory bench-backfill train-detector train-regressor

help:
	@echo "make demo    - install if needed, start the local stack, run the daily pipeline over the demo dates"
	@echo "make report MONTH=2025-06 [LEVEL=operator|field|country] [VALUE=name] - monthly reports into .state/reports/"
	@echo "make test    - ruff, then the whole test suite (real Postgres + S3 servers started by the tests)"
	@echo "make up/down - start (or heal: restarts what died)/stop the local stack (S3 server, PostgreSQL, Airflow)"
	@echo "make psql    - psql on the results database (reads SQL from stdin when piped); ANALYST=1: as the read-only flarewatch_analyst"
	@echo "make status  - each local-stack component up or down (and why, with its last log lines)"
	@echo "make env     - export lines for the local stack (secrets masked; SHOW_SECRETS=1 prints them)"
	@echo "make test-reliability - the fault-injection suite and the local-stack healing tests (bad tiles, killed servers and tasks)"
	@echo "make evaluate - YOLO vs threshold detector, learned regressor vs calibrations, on held-out data (one JSON)"
	@echo "make bench   - detector chips/s per runtime (PyTorch, ONNX Runtime, OpenVINO) and per-tile task tiles/s"
	@echo "make bench-memory - peak memory of processing one tile, and per pixel as tiles grow"
	@echo "make bench-scale - 6 / 60 / 600 synthetic sites x 1 / 7 days: cost per site-day, rollups, analytics, DB and S3 size"
	@echo "make bench-backfill [SITES=6 DAYS=60] - site-days/s of a backfill through the Airflow scheduler (a fresh local stack) and in-process"

venv: $(STAMP)

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 not found (set PYTHON=/path/to/python3.11)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing the pinned stack into $(VENV) (first time: a few minutes; torch is large)..."
	$(PIP_ENV) $(PY) -m pip install --quiet --upgrade pip
	$(PIP_ENV) $(PY) -m pip install --quiet -r requirements.txt
	$(PIP_ENV) $(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	$(PIP_ENV) $(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@$(PY) -c "import torch, torchvision.ops, airflow, rasterio, sentinelhub, ultralytics" \
		|| { echo "installed stack does not import (see above)"; exit 1; }
	@touch $(STAMP)

demo: $(STAMP)
	$(FW) demo

# One month's PDF / Excel / CSV reports from the results DB into .state/reports/month=.../<level>=.../
# (LEVEL and VALUE empty: every operator, field and country).
report: $(STAMP)
	@test -n "$(MONTH)" || { echo "usage: make report MONTH=YYYY-MM [LEVEL=operator|field|country] [VALUE=name]"; exit 2; }
	$(FW) report --month "$(MONTH)" --level "$(LEVEL)" --value "$(VALUE)" --out .state/reports

up: $(STAMP)
	$(FW) up

down:
	@if [ -x $(PY) ]; then $(FW) down; else echo "nothing to stop"; fi

status: $(STAMP)
	@$(FW) status

summary: $(STAMP)
	@$(FW) summary

# secrets masked unless SHOW_SECRETS=1
env: $(STAMP)
	@$(FW) env $(if $(filter 1 yes true,$(SHOW_SECRETS)),--show-secrets)

psql: $(STAMP)
	@$(FW) psql $(if $(filter 1 yes true,$(ANALYST)),--analyst)

test: $(STAMP) lint
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .

test-unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

# Tests marked `reliability`: the fault-injection suite (tests/reliability, also in `make test`) and
# the tests that start the whole local stack (Airflow too) on free ports in a temporary state folder
# (FLAREWATCH_STACK_TESTS=1; `make test` skips those unless it is set, as .ci/run does).
test-reliability: $(STAMP)
	FLAREWATCH_STACK_TESTS=1 $(PY) -m pytest -q -m reliability

clean-state: down
	rm -rf .state

EVALUATION_JSON := benchmarks/results/evaluation.json

evaluate: $(STAMP)
	@rm -f $(EVALUATION_JSON)
	$(PY) benchmarks/evaluate_baseline.py --days 30 --start 2025-06-01 --no-site-days --out $(EVALUATION_JSON) --key baseline
	$(PY) benchmarks/evaluate_detector.py --weights models/detector/flare-yolo11n.pt --out $(EVALUATION_JSON) --key detector
	$(PY) benchmarks/select_detector.py --out $(EVALUATION_JSON)
	$(PY) benchmarks/evaluate_regressor.py --out $(EVALUATION_JSON)
	$(PY) benchmarks/evaluate_independent.py --scenes 200 --out $(EVALUATION_JSON) --key independent
	$(PY) benchmarks/evaluate_anomalies.py --out $(EVALUATION_JSON) --key anomalies
	@echo "all figures: $(EVALUATION_JSON)"

bench: $(STAMP)
	$(PY) benchmarks/bench_inference.py --out benchmarks/results/bench.json

bench-memory: $(STAMP)
	$(PY) benchmarks/bench_memory.py --out benchmarks/results/bench_memory.json

.PHONY: bench-scale
bench-scale: $(STAMP)
	$(PY) benchmarks/bench_scale.py --out benchmarks/results/bench_scale.json

bench-backfill: $(STAMP)
	$(PY) benchmarks/bench_backfill.py --sites $(or $(SITES),6) --days $(or $(DAYS),60) --out benchmarks/results/bench_backfill.json

train-regressor: $(STAMP)
	$(PY) scripts/train_regressor.py

train-detector: $(STAMP)
	$(PY) scripts/train_detector.py --epochs 35 --out .state/training
