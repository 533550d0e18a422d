# Toxic-comment moderation service. `make help` lists the targets.
SHELL := /bin/bash
# The Python Lambda runs (3.12): python3.12 on PATH, else pyenv's, else plain python3 (the
# venv check below then says which one it got).
PYTHON ?= $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c '' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
REQS := $(filter-out requirements/sam.txt,$(wildcard requirements/*.txt)) functions/requirements.txt pyproject.toml
SAM_VENV := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed
# sam reads these; nothing here talks to AWS
SAM_ENV := SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1}

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

$(STAMP): $(REQS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c 'import sys; v = sys.version_info[:2]; v == (3, 12) or print(f"warning: .venv runs Python {v[0]}.{v[1]}; Lambda runs 3.12")' 
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements/dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP) ## create .venv and install everything (only when requirements change)

$(SAM_STAMP): requirements/sam.txt
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install -q --upgrade pip
	$(SAM_VENV)/bin/python -m pip install -q -r requirements/sam.txt
	touch $(SAM_STAMP)

validate: venv $(SAM_STAMP) ## cfn-lint + sam validate --lint on template.yaml (sam in .venv-sam)
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM_ENV) $(SAM_VENV)/bin/sam validate --lint --template template.yaml

lint: venv validate ## ruff check + format check + template validation
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

browser: ## Debian's chromium for the browser tests (apt-get, only when missing)
	bash .ci/install-chromium

test: lint browser ## lint, validate the template, then every test layer (browser tests too)
	$(PY) -m pytest

test-fast: venv ## the unit layer alone (no data, no moto, no servers): the inner loop
	$(PY) -m pytest tests/unit -q

train: venv ## train on DATA_DIR, write a bundle to artifacts/bundles, track in W&B
	$(PY) -m training.train

register: venv ## register the latest bundle in the S3 registry (MODEL_BUCKET)
	$(PY) -m training.register

promote: venv ## point an alias at a version: make promote VERSION=v2 [ALIAS=production] [FORCE=1]
	$(PY) -m training.promote --version $(VERSION) --alias $(or $(ALIAS),production) $(if $(FORCE),--force)

run: venv ## the local stack: moto :5000, model bootstrap, API :8000, UI :8501, dashboard :8502
	@echo "Starting: moto (AWS stand-in) http://127.0.0.1:5000, API http://127.0.0.1:8000 (docs: /docs),"
	@echo "          moderator UI http://127.0.0.1:8501, dashboard http://127.0.0.1:8502 (Ctrl-C stops)"
	$(VENV)/bin/honcho -e local.env -f local/Procfile start

reset-local: venv ## delete the local stack's state (.local: tables, registry, stream positions) to start from scratch
	$(PY) -m local reset
.PHONY: reset-local

redrive-webhooks: venv ## send the local stack's dead-lettered webhook deliveries back to the queue
	$(VENV)/bin/honcho -e local.env run $(PY) -m local redrive-webhooks
.PHONY: redrive-webhooks

seed-traffic: venv ## send COUNT (default 500) real comments + feedback through the running API
	$(PY) -m local seed --count $(or $(COUNT),500)

bench-model: venv ## model benchmark -> bench/results/model.json
	$(PY) -m bench.model

eval: venv ## behavioural suite + identity bias on the latest bundle (BUNDLE=dir) -> bench/results/behaviour.json; fails below a floor
	$(PY) -m bench.behaviour $(if $(BUNDLE),--bundle $(BUNDLE))
.PHONY: eval

bench-language: venv ## language identification: confidence floors on validation, speed -> bench/results/language.json
	$(PY) -m bench.language
.PHONY: bench-language

bench-api: venv ## API benchmark -> bench/results/api.json (needs a trained bundle: make train)
	$(PY) -m bench.api

bench-aggregator: venv ## aggregator benchmark -> bench/results/aggregator.json
	$(PY) -m bench.aggregator

bench-cost: venv ## write/read units per operation and $ per million predictions -> bench/results/cost.json
	$(PY) -m bench.cost

bench-stream-sim: venv ## Lambda stream processing simulated at 100/1k/10k per s, old vs new aggregator -> bench/results/stream_sim.json
	$(PY) -m bench.stream_sim

bench-catch-up: venv ## 5,000 predictions via /predict/batch on the local stack, then time until all are aggregated -> bench/results/catch_up.json
	$(PY) -m bench.catch_up

bench-restart: venv ## local stack restart after 1k/10k/50k predictions, state size, 24 h dashboard -> bench/results/restart.json
	$(PY) -m bench.restart
.PHONY: bench-restart

bench-dashboard: venv ## dashboard main page for 24 h after 10k and 200k predictions -> bench/results/dashboard.json
	$(PY) -m bench.dashboard

bench: venv ## every benchmark, then the side-by-side comparison -> bench/results/ (summary.md)
	$(PY) -m bench.all

bench-load: venv ## locust load test on the local stack + log/aggregate consistency -> bench/results/load.json
	$(PY) -m bench.load

bench-compare: venv ## this system vs scikit-learn vs alt-profanity-check -> bench/results/compare.json
	$(PY) -m bench.compare

security: venv ## pip-audit over every requirements file (needs PyPI's JSON API) + secret scan
	bash .ci/security

package-size: venv ## size of the Lambda zip (arm64 wheels + functions/) -> bench/results/package.json
	$(PY) -m bench.package

clean: ## remove local state (venv, bundles, W&B offline runs, caches)
	rm -rf $(VENV) $(SAM_VENV) .venv-peer artifacts .local wandb .pytest_cache .ruff_cache

.PHONY: help venv browser validate package-size bench bench-catch-up bench-cost bench-stream-sim bench-dashboard bench-load bench-compare security lint format test test-fast train register promote run seed-traffic bench-model bench-api bench-aggregator clean
