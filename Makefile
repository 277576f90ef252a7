# voice-loadtest — the verbs users and CI type. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PCM_DIR ?= audio_cache
export PCM_DIR

.DEFAULT_GOAL := help
.PHONY: help venv lint format types test test-unit test-integration test-interop test-deps generate_audio inspect-audio \
        audio agent demo run_load_test run_load_test_acs_media bench-agent push-audio pull-audio alt-export alt-run helm-lint helm-package helm-push helm-install helm-run generate check-generated image wheels compose-up compose-down compose-test bench bench-quick clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-24s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml scripts/bootstrap-python.sh
	@bash scripts/bootstrap-python.sh "$(PYTHON)" "$(VENV)"
	@touch $@

venv: $(BIN)/.installed ## create/update the virtualenv with the project and dev tools

lint: venv ## ruff lint + format check
	$(BIN)/ruff check loadtest tools bench tests
	$(BIN)/ruff format --check loadtest tools bench tests

format: venv ## apply ruff formatting and safe fixes
	$(BIN)/ruff check --fix loadtest tools bench tests
	$(BIN)/ruff format loadtest tools bench tests

types: venv ## mypy --strict on loadtest, tools and bench
	$(BIN)/mypy

test-unit: venv ## pure, fast tests
	$(BIN)/pytest tests/unit -q

test-deps: ## install system packages the integration tests use (idempotent)
	@bash scripts/test-deps.sh

test-integration: venv test-deps ## real servers, processes and engines
	$(BIN)/pytest tests/integration -q

test-interop: venv ## the harness against a third-party agent (Pipecat, in its own .venv-interop)
	bash scripts/deps/interop.sh
	$(BIN)/pytest tests/interop -q

test: lint types check-generated test-deps ## everything CI runs: lint, types, generated files, unit and integration tests
	$(BIN)/pytest tests -q

# Committed files that derive from code: Grafana dashboards and alert rules (once, in the chart:
# helm/voice-loadtest/dashboards, rules), the chart schema's settings, the docs' settings table,
# and k8s/ rendered from the chart, in that order. Edit the generators in tools/, not the output.
generate: venv ## regenerate every generated file (dashboards, alert rules, settings and chart values tables, k8s/)
	$(BIN)/python -m tools.generate

check-generated: venv ## fail when a generated file differs from its generator (CI)
	$(BIN)/python -m tools.generate --check

# The caller audio in $(PCM_DIR) is the user's data: the targets that run a test generate it only
# when the folder has none (`audio`), and use any cache found there as it is (another engine,
# voice or scenarios file included). generate_audio refuses to replace another cache unless
# FORCE=1; PRUNE=1 also deletes PCM files generate-audio did not write.
generate_audio: venv ## caller audio into $(PCM_DIR): espeak offline, ENGINE=azure for Azure Speech (FORCE=1 replaces another cache)
	$(BIN)/voice-loadtest generate-audio --engine $(or $(ENGINE),espeak) --out "$(PCM_DIR)" \
	  $(if $(FORCE),--force) $(if $(PRUNE),--prune)

inspect-audio: venv ## audit the audio cache in $(PCM_DIR)
	$(BIN)/voice-loadtest audio inspect "$(PCM_DIR)"

audio: venv
	@$(BIN)/voice-loadtest generate-audio --if-missing --out "$(PCM_DIR)"

DEMO_AGENT_ARGS ?= --latency-ms 800 --latency-dist uniform:700,900 --barge-latency-ms 200 \
                   --greeting-ms 1200 --seed 7 --log-level warning
demo: venv audio ## zero-cloud demo: offline audio, agent simulator, 1 master + 2 workers, 20 callers, ~1 min
	$(BIN)/voice-loadtest run --with-agent --agent-args "$(DEMO_AGENT_ARGS)" --workers 2 \
	  --users 20 --spawn-rate 5 --run-time $(or $(RUN_TIME),60s) --reports-dir reports \
	  --greeting wait --pcm-dir "$(PCM_DIR)"

agent: venv ## run the reference agent simulator on 127.0.0.1:8010 (AGENT_ARGS=...)
	$(BIN)/voice-loadtest agent --port 8010 $(AGENT_ARGS)

# Seed-compatible: URL (agent ws[s]:// URL), CONVERSATIONS (users), CONCURRENT (spawn rate),
# TURNS (turns per user), RUN_TIME (default 10m), WORKERS (default: CPU count).
run_load_test: venv audio ## headless load test: make run_load_test URL=wss://... CONVERSATIONS=50 CONCURRENT=5 TURNS=3
	@test -n "$(URL)" || { echo "error: set URL=ws://host:port/path (or wss://...)" >&2; exit 2; }
	$(BIN)/voice-loadtest run --ws-url "$(URL)" --users $(or $(CONVERSATIONS),10) \
	  --spawn-rate $(or $(CONCURRENT),2) --turns-per-user $(or $(TURNS),0) \
	  --run-time $(or $(RUN_TIME),10m) $(if $(WORKERS),--workers $(WORKERS)) \
	  --reports-dir reports --pcm-dir "$(PCM_DIR)"

# The ACS media target of Azure-Samples/art-voice-agent-accelerator, as it has it: HOST (default localhost:8010, where `make agent`
# listens; host[:port], or a ws[s]:// URL, the ACS path added when it has none) or WS_URL,
# USERS (15), SPAWN_RATE (2), TIME (90s), EXTRA_ARGS (more Locust options); WORKERS as above.
run_load_test_acs_media: HOST = localhost:8010
run_load_test_acs_media: venv audio ## the accelerator's ACS media test: make run_load_test_acs_media HOST=agent.example.com USERS=15 TIME=90s
	@url="$(WS_URL)"; if [ -z "$$url" ]; then url="$(HOST)"; \
	  case "$$url" in *://*) ;; *) url="ws://$$url" ;; esac; \
	  case "$${url#*://}" in */*) ;; *) url="$$url/api/v1/media/stream" ;; esac; fi; \
	echo "run_load_test_acs_media: $$url, $(or $(USERS),15) users at $(or $(SPAWN_RATE),2)/s for $(or $(TIME),90s)"; \
	$(BIN)/voice-loadtest run --ws-url "$$url" --ws-protocol acs --users $(or $(USERS),15) \
	  --spawn-rate $(or $(SPAWN_RATE),2) --run-time $(or $(TIME),90s) \
	  $(if $(WORKERS),--workers $(WORKERS)) --reports-dir reports --pcm-dir "$(PCM_DIR)" \
	  $(if $(EXTRA_ARGS),--locust-args "$(EXTRA_ARGS)")

push-audio: venv ## upload $(PCM_DIR) to Azure Blob (AZURE_STORAGE_CONNECTION_STRING or AUDIO_BLOB_ACCOUNT_URL [+ AUDIO_BLOB_SAS]); PUSH_ARGS=--delete
	$(BIN)/voice-loadtest audio push "$(PCM_DIR)" $(PUSH_ARGS)

pull-audio: venv ## download and verify the Blob audio cache into $(PCM_DIR)
	$(BIN)/voice-loadtest audio pull "$(PCM_DIR)" $(PULL_ARGS)

# Azure Load Testing. alt-export: URL=wss://... [ALT_TEST_ID ENGINES USERS SPAWN_RATE RUN_TIME SLO ALT_ARGS]
# alt-run also: ALT_RESOURCE=... ALT_RG=... [ALT_LOCATION=eastus to create the resource]
ALT_DIR ?= build/alt
alt-export: venv audio ## export an Azure Load Testing test into $(ALT_DIR) (URL=wss://... ENGINES= USERS=)
	@test -n "$(URL)" || { echo "error: set URL=wss://host/path" >&2; exit 2; }
	$(BIN)/voice-loadtest alt export --out "$(ALT_DIR)" --force --ws-url "$(URL)" \
	  --pcm-dir "$(PCM_DIR)" --test-id "$(or $(ALT_TEST_ID),voice-agent-load)" \
	  --engines $(or $(ENGINES),1) --users $(or $(USERS),50) --spawn-rate $(or $(SPAWN_RATE),5) \
	  --duration $(or $(RUN_TIME),10m) $(if $(SLO),--slo "$(SLO)") $(ALT_ARGS)

alt-run: alt-export ## create/update and run the test in Azure Load Testing (ALT_RESOURCE= ALT_RG=)
	@test -n "$(ALT_RESOURCE)" -a -n "$(ALT_RG)" || { echo "error: set ALT_RESOURCE=... ALT_RG=..." >&2; exit 2; }
	bash scripts/azure-load-test.sh --config "$(ALT_DIR)/alt-config.yaml" \
	  --resource "$(ALT_RESOURCE)" --resource-group "$(ALT_RG)" \
	  $(if $(ALT_LOCATION),--location "$(ALT_LOCATION)") --reports reports

# ---------------------------------------------------------------------------- Containers
IMAGE ?= voice-loadtest:latest
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
COMPOSE_FILES := -f docker/docker-compose.yml

image: ## build the Docker image IMAGE (BASE_IMAGE=, AUDIO_SOURCE=auto|context|blob|espeak|none; wheels/ -> offline)
	IMAGE="$(IMAGE)" bash docker/build.sh $(IMAGE_ARGS)

wheels: venv ## wheels/ for an offline image build (same Python as BASE_IMAGE)
	$(BIN)/pip wheel -q -w wheels .

compose-up: ## docker compose: agent, master (web UI 127.0.0.1:8089), WORKERS workers (MONITORING=1: + Prometheus, Grafana)
	VOICE_LOADTEST_IMAGE="$(IMAGE)" $(COMPOSE) $(COMPOSE_FILES) $(if $(MONITORING),--profile monitoring) up --detach --scale worker=$(or $(WORKERS),2)

compose-down: ## stop the compose stack and delete its reports volume
	$(COMPOSE) $(COMPOSE_FILES) --profile monitoring down --volumes --remove-orphans

compose-test: ## headless compose run: 1 master + WORKERS workers + agent; exit code = SLO verdict, reports in reports/compose
	VOICE_LOADTEST_IMAGE="$(IMAGE)" bash docker/compose-test.sh

# ---------------------------------------------------------------------------- Kubernetes
# The chart is linted and rendered by Helm's own engine (the helm-python-sdk wheel), so these
# need no helm binary; helm-install/helm-run drive a real cluster with the helm and kubectl CLIs.
CHART := helm/voice-loadtest
RELEASE ?= voice-loadtest
NAMESPACE ?= voice-loadtest
HELM ?= helm
KUBECTL ?= kubectl
HELM_VALUES ?=
HELM_ARGS ?=
HELM_TIMEOUT ?= 15m

helm-lint: venv ## lint the chart with Helm's engine (defaults, presets, ci/*-values.yaml)
	$(BIN)/python -m tools.k8s_manifests

CHART_DIST ?= dist
helm-package: venv ## package the chart into $(CHART_DIST)/voice-loadtest-<version>.tgz and lint the archive (Helm's engine)
	$(BIN)/python -m tools.helm_chart package --chart $(CHART) --out "$(CHART_DIST)"

helm-push: helm-package ## push the packaged chart: make helm-push REGISTRY=oci://myacr.azurecr.io/helm
	@test -n "$(REGISTRY)" || { echo "error: set REGISTRY=oci://HOST/PATH" >&2; exit 2; }
	$(BIN)/python -m tools.helm_chart push --registry "$(REGISTRY)" \
	  "$(CHART_DIST)/voice-loadtest-$$(sed -n 's/^version: *//p' $(CHART)/Chart.yaml).tgz"

helm-install: ## install/upgrade the chart, interactive master: make helm-install HELM_VALUES="-f my-values.yaml"
	$(HELM) upgrade --install $(RELEASE) $(CHART) --namespace $(NAMESPACE) --create-namespace \
	  $(HELM_VALUES) $(HELM_ARGS) --wait --timeout $(HELM_TIMEOUT)
	@echo "web UI: $(KUBECTL) -n $(NAMESPACE) port-forward svc/$(RELEASE)-master 8089:8089"

helm-run: ## headless cluster run (master Job) to completion; exits with the SLO verdict (0/1/2)
	$(HELM) upgrade --install $(RELEASE) $(CHART) --namespace $(NAMESPACE) --create-namespace \
	  $(HELM_VALUES) $(HELM_ARGS) --set mode=run --wait --timeout $(HELM_TIMEOUT)
	@set -u; selector=app.kubernetes.io/instance=$(RELEASE),app.kubernetes.io/component=master; \
	job=$$($(KUBECTL) -n $(NAMESPACE) get jobs -l "$$selector" --sort-by=.metadata.creationTimestamp \
	  -o jsonpath='{.items[-1:].metadata.name}'); \
	test -n "$$job" || { echo "helm-run: no master Job for release $(RELEASE)" >&2; exit 2; }; \
	echo "helm-run: following job/$$job"; \
	$(KUBECTL) -n $(NAMESPACE) logs -f "job/$$job" -c master --pod-running-timeout=10m || true; \
	code=""; for _ in $$(seq 120); do \
	  code=$$($(KUBECTL) -n $(NAMESPACE) get pods -l "job-name=$$job" -o \
	    jsonpath='{.items[0].status.containerStatuses[0].state.terminated.exitCode}' 2>/dev/null); \
	  [ -n "$$code" ] && break; sleep 5; \
	done; \
	echo "helm-run: job/$$job exit code $${code:-unknown} (0 pass, 1 fail, 2 invalid run)"; \
	exit $${code:-2}

# BENCH_ARGS: e.g. --target-callers-per-core 500 --target-error-p99-ms 2 (judged on the page)
bench: venv audio ## harness benchmark -> docs/benchmarks.md: capacity/core, accuracy, cost, scale-out, agent, cold start, hot path, master scale (refuses a busy machine: BENCH_ARGS=--force)
	$(BIN)/python -m bench --out docs/benchmarks.md --json reports/benchmarks.json --pcm-dir "$(PCM_DIR)" $(BENCH_ARGS)

bench-quick: venv audio ## the benchmark's < 2 min smoke run (CI runs tests/integration/test_bench_quick.py)
	$(BIN)/python -m bench --quick --out reports/benchmarks-quick.md --json reports/benchmarks-quick.json --pcm-dir "$(PCM_DIR)"

bench-agent: venv ## agent simulator capacity: real-time calls per core (pins server and client cores)
	$(BIN)/python -m bench.agent --calls 500,750,1000,1250 --step-s 10
	$(BIN)/python -m bench.agent --calls 500,750,1000,1250 --step-s 10 --caller-audio unique
	$(BIN)/python -m bench.agent --calls 1000,1500,2000,2500 --step-s 10 --caller-audio none

clean: ## remove caches and build output (keeps the venv and audio)
	rm -rf .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
