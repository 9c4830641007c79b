# Self-documenting: `make help` lists every target with the text after its `##`.
.DEFAULT_GOAL := help
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# The venv's bin first: its python, and the node/npm/npx that jsii and the CDK CLI run on.
export PATH := $(BIN):$(PATH)
export PYTHONDONTWRITEBYTECODE := 1
CDK := npx --no-install cdk
STAMP := $(VENV)/.install-stamp
# `make run` needs only serving and training (requirements-run.txt): its own, smaller stamp.
RUN_STAMP := $(VENV)/.run-stamp
# checkov pins packaging<24, which pytest 9 cannot use: it gets a venv of its own.
CHECKOV := $(VENV)/checkov/bin/checkov
# Wheels of the serving image's dependencies (and the benchmark baseline's), fetched at install
# time so that the image test and the benchmark install them offline.
WHEELS := $(VENV)/wheelhouse
MODEL := lambda_image/model/model.npz
PORT ?= 8000

# The operator commands find the stacks themselves: STACK_PREFIX=... (or AWS_REGION=...) on the
# command line reaches them through the environment, else cdk.json decides.

.PHONY: help install model synth check test lint format run bench diagram cost retrain retrain-local registry \
        status promote rollback preflight deploy destroy lock clean system rehearse

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  \033[1m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: $(STAMP) ## Create .venv with the pinned Python deps, Node 24 and the CDK CLI

# Re-runs only when a dependency file changes, so a second `make` does not reinstall.
$(RUN_STAMP): requirements-run.txt training/requirements.txt lambda_image/requirements.txt constraints.txt
	@$(PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if v >= (3, 11) else f"Python 3.11+ is needed; $(PYTHON) is {v.major}.{v.minor}")'
	@test -x $(BIN)/python || { echo "==> creating $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "==> installing the serving and training dependencies (requirements-run.txt)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-run.txt -c constraints.txt
	@touch $@

# Everything else on top of the run install: the CDK, its CLI, the scanners, the test tools.
$(STAMP): $(RUN_STAMP) requirements.txt requirements-dev.txt bench/baseline/requirements.txt \
          package.json package-lock.json
	@echo "==> installing the CDK, its CLI, the scanners and the test tools (requirements-dev.txt)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	npm ci --no-audit --no-fund --loglevel=error
	$(BIN)/python -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
	  -d $(WHEELS) -r lambda_image/requirements.txt -r bench/baseline/requirements.txt
	@touch $@

$(CHECKOV): requirements-checkov.txt
	@test -x $(VENV)/checkov/bin/python || $(PYTHON) -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	@touch $@

model: $(MODEL) ## Train the model on the bundled iris data into the serving image's build context

# Retrained only when the trainer changes; the same data and code give the same bytes anyway.
$(MODEL): $(RUN_STAMP) $(wildcard training/ml/*.py)
	@echo "==> training the model on the bundled iris data (python -m training train)"
	python -m training train --out lambda_image/model

synth: install model ## Synthesize the app into cdk.out/ (cdk-nag checks every stack)
	$(CDK) synth --quiet
	@echo "Templates in cdk.out/: $$(cd cdk.out && ls *.template.json | tr '\n' ' ')"

lint: install ## Lint (ruff), check formatting, type-check (mypy strict), lint the Dockerfile and scripts
	ruff check .
	ruff format --check .
	mypy
	MYPYPATH=lambda_image mypy lambda_image/app $$(find tests/serving -name '*.py')
	hadolint lambda_image/Dockerfile lambda_image/model.Dockerfile
	shellcheck .ci/run scripts/*.sh

check: synth $(CHECKOV) ## Scan the synthesized templates: cfn-lint (no errors), checkov (no failures)
	cfn-lint
	$(CHECKOV) -d cdk.out --framework cloudformation --quiet --compact --skip-download

# A prerequisite of `test` and `diagram`, not part of the stamp-cached `install`: a machine
# with a cached .venv still gets Chromium and Graphviz.
system: ## Install Debian's Chromium (browser test) and Graphviz (diagram) with apt-get; nothing when present
	scripts/system_setup.sh

# REHEARSAL=1 adds the deploy rehearsal (tests/rehearsal, about a minute): the stacks deployed
# into MiniStack and the retraining loop driven there.
test: lint check system ## Everything CI runs: lint, types, template scanners, the test suite, the deploy rehearsal
	REHEARSAL=1 pytest

# MiniStack and the Node SDK its Lambdas load install into .venv/ministack on first use
# (rehearsal/requirements.txt, rehearsal/lambda_sdk); REHEARSE_ARGS=--no-auth skips IAM, --keep
# keeps the work folder with every log.
rehearse: install model ## Deploy the whole app into a local AWS emulator (MiniStack) and drive the retraining loop
	python -m rehearsal $(REHEARSE_ARGS)

format: install ## Rewrite files in the house format and fix what ruff can fix
	ruff format .
	ruff check --fix .

# Only what serving and training need: a fresh clone answers in well under a minute and a half.
run: model ## Serve the API on http://127.0.0.1:8000 (PORT=...), training the model if missing
	@echo "==> serving on http://127.0.0.1:$(PORT) (Ctrl-C stops)"
	python scripts/serve_local.py --port $(PORT)

bench: install model ## Benchmark cold start, warm latency and dependency size against a baseline
	python bench/bench.py

diagram: install model system ## Draw docs/architecture.png with Graphviz from the synthesized app
	python scripts/diagram.py

cost: install model ## Estimate the monthly AWS bill of the configured app (list prices, docs/cost.md)
	python scripts/cost.py

retrain: install ## Train on dataset version DATASET=<version> in AWS (needs AWS credentials)
	@test -n "$(DATASET)" || { echo "usage: make retrain DATASET=<version> [REASON=...]"; exit 2; }
	python -m training retrain --dataset-version "$(DATASET)" \
	  $(if $(REASON),--reason "$(REASON)")

retrain-local: install ## Run the whole pipeline against an in-process AWS emulation (moto)
	python scripts/retrain_local.py

registry: install ## Show the model registry in AWS: live, rollback, models, runs
	python -m training registry

status: install ## Show the live model, the rollback target and the history (AWS)
	python -m training status

promote: install ## Promote model VERSION=<model version> through the canary (AWS)
	@test -n "$(VERSION)" || { echo "usage: make promote VERSION=<model version> [REASON=...]"; exit 2; }
	python -m training promote --model-version "$(VERSION)" \
	  $(if $(REASON),--reason "$(REASON)")

rollback: install ## Roll back to the rollback target, or to TO=<model version> (AWS)
	python -m training rollback $(if $(TO),--model-version "$(TO)") \
	  $(if $(REASON),--reason "$(REASON)")

# CONTEXT="key=value ..." becomes `-c key=value ...` for preflight and deploy alike, so both see
# the config that `cdk deploy` synthesizes.
preflight: install ## Check credentials, bootstrap, Docker, Lambda quota, Slack and alarm targets (CONTEXT=...)
	python scripts/preflight.py $(foreach pair,$(CONTEXT),-c $(pair))

# scripts/deploy.py runs the preflight checks first and stops on a blocker. It does not depend on
# the `preflight` target: there a missing CDK bootstrap blocks, here it is bootstrapped next.
deploy: install model ## Run the preflight checks, bootstrap the app region and us-east-1 if needed, deploy every stack
	python scripts/deploy.py deploy $(foreach pair,$(CONTEXT),-c $(pair))

destroy: install ## Delete the stacks after typing their prefix; data and models are kept
	python scripts/deploy.py destroy $(if $(CONFIRM),--confirm "$(CONFIRM)")

# training/constraints.txt is the trainer's subset, from a clean install of its requirements
# alone: the trainer AMI embeds it, so a dev-tool bump does not rebuild the AMI.
lock: ## Re-pin every transitive dependency into constraints.txt and training/constraints.txt
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	{ echo "# Every transitive Python dependency, pinned: regenerate with \`make lock\` after editing a requirements file."; \
	  .venv-lock/bin/python -m pip freeze --exclude-editable; } > constraints.txt
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --disable-pip-version-check -r training/requirements.txt -c constraints.txt
	{ echo "# The trainer's pins: training/requirements.txt and everything it needs, versions as in"; \
	  echo "# constraints.txt. The trainer AMI embeds this file; \`make lock\` regenerates it."; \
	  .venv-lock/bin/python -m pip freeze --exclude-editable; } > training/constraints.txt
	rm -rf .venv-lock

clean: ## Remove build output (keeps .venv and node_modules)
	rm -rf cdk.out .mypy_cache .ruff_cache .pytest_cache .hypothesis lambda_image/model
