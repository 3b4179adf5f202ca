# X-Ray: the two set-up commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
XRAY_HOME ?= .xray
DAGSTER_YAML ?= dagster.yaml
export DAGSTER_HOME ?= $(abspath $(XRAY_HOME)/dagster_home)
export XRAY_HOME

# torch first, CPU build: from the local wheel store where there is one, else PyTorch's CPU index
# (a plain `torch` from PyPI is a multi-GB CUDA build).
TORCH_INDEX ?= $(if $(wildcard /opt/wheels/torch-2.13.0+cpu*),,--index-url https://download.pytorch.org/whl/cpu)

.PHONY: install demo test services ui serve mlflow-ui lint format clean dagster-home env-example

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "X-Ray needs Python 3.11+ (set PYTHON=python3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0 $(TORCH_INDEX)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

dagster-home:
	@mkdir -p $(DAGSTER_HOME)
	@cp $(DAGSTER_YAML) $(DAGSTER_HOME)/dagster.yaml

demo: install dagster-home
	$(BIN)/xray demo

services:
	@bash scripts/ensure-services.sh

test: install services
	$(BIN)/python -m pytest

ui: install dagster-home
	@echo "Starting the emulator on 127.0.0.1:8765 and the Dagster UI on http://127.0.0.1:3000"
	@$(BIN)/xray exchange-sim --port 8765 & sim=$$!; trap "kill $$sim" EXIT; \
		XRAY_EXCHANGE_URL=http://127.0.0.1:8765 $(BIN)/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

# The pipeline keeping itself fresh: the emulator and a fake news feed on loopback, the Dagster daemon
# (schedules, sensors, the automation sensor) and the webserver on the instance in $(DAGSTER_HOME)
# (embedded SQLite; DAGSTER_YAML=dagster.postgres.yaml for Postgres). Ctrl-C stops all four.
serve: install dagster-home
	@echo "Emulator 127.0.0.1:8765, news feed 127.0.0.1:8766, dagster-daemon, Dagster UI http://127.0.0.1:3000"
	@trap 'kill 0' EXIT INT TERM; \
		export XRAY_EXCHANGE_URL=http://127.0.0.1:8765 \
			XRAY_RESEARCH_NEWS_SOURCES=http://127.0.0.1:8766/rss.xml,http://127.0.0.1:8766/atom.xml; \
		$(BIN)/xray exchange-sim --port 8765 & \
		$(BIN)/python -m xray_sim.news.feed --port 8766 & \
		$(BIN)/dagster-daemon run -w workspace.yaml & \
		$(BIN)/dagster-webserver -h 127.0.0.1 -p 3000 -w workspace.yaml

mlflow-ui: install
	@mkdir -p $(XRAY_HOME)/mlflow
	$(BIN)/mlflow ui --host 127.0.0.1 --port 5000 \
		--backend-store-uri $${XRAY_MODELS_TRACKING_URI:-sqlite:///$(abspath $(XRAY_HOME))/mlflow/mlflow.db}

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# .env.example is generated from the settings classes; tests/cli/test_env_example.py fails when it drifts.
env-example: install
	$(BIN)/xray settings env-example --output .env.example

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(XRAY_HOME) .pytest_cache .ruff_cache .mypy_cache
