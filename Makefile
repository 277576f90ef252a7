# voice-loadtest — the verbs users and CI type. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PCM_DIR ?= audio_cache
export PCM_DIR

.DEFAULT_GOAL := help
.PHONY: help venv lint format types test test-unit test-integration generate_audio inspect-audio \
        agent demo clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml scripts/bootstrap-python.sh
	@bash scripts/bootstrap-python.sh "$(PYTHON)" "$(VENV)"
	@touch $@

venv: $(BIN)/.installed ## create/update the virtualenv with the project and dev tools

lint: venv ## ruff lint + format check
	$(BIN)/ruff check loadtest tests
	$(BIN)/ruff format --check loadtest tests

format: venv ## apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix loadtest tests
	$(BIN)/ruff format loadtest tests

types: venv ## mypy --strict on the package
	$(BIN)/mypy

test-unit: venv ## pure, fast tests
	$(BIN)/pytest tests/unit -q

test-integration: venv ## real servers, processes and engines
	$(BIN)/pytest tests/integration -q

test: lint types ## everything CI runs: lint, types, unit and integration tests
	$(BIN)/pytest tests -q

generate_audio: venv ## offline caller audio into $(PCM_DIR) (ENGINE=azure for Azure Speech)
	$(BIN)/voice-loadtest generate-audio --engine $(or $(ENGINE),espeak) --out "$(PCM_DIR)"

inspect-audio: venv ## audit the audio cache in $(PCM_DIR)
	$(BIN)/voice-loadtest audio inspect "$(PCM_DIR)"

clean: ## remove caches and build output (keeps the venv and audio)
	rm -rf .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
