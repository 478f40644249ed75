# ChaosDemo: `make demo` runs the whole story on the local tier; `make test` runs the tests.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
IMAGE ?= chaosdemo-operator:dev
KIND_CLUSTER ?= chaosdemo

.PHONY: help install packages control-plane demo demo-up test test-unit test-local lint typecheck crds \
        helm image kind-tier demo-kind demo-kind-down test-kind bench bench-canary bench-kind eval clean

# make test LOAD=2: the tests with two busy loops beside them (CI's two cores, shared with a build).
# make test SEED=N: the tests in the order of seed N (pytest-randomly shuffles them on every run and
# prints the seed it used, as "Using --randomly-seed=N").
LOAD ?= 0
PYTEST := bash hack/with-load.sh $(LOAD) $(PY) -m pytest $(if $(SEED),-p randomly --randomly-seed=$(SEED))

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml proving/pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[test]' -e ./proving
	touch $@

install: $(VENV)/.installed  ## create .venv with the operator and its test tools

packages:  ## the Debian packages the tiers need (as root: installed; otherwise the command to run)
	bash hack/debian-packages.sh test

control-plane:  ## build (or reuse) etcd, kube-apiserver, controller-manager, scheduler, kubectl, kwok
	bash hack/build-control-plane.sh

demo: install control-plane  ## the whole demo on the local tier (real control plane, SIMULATED TiKV/PD)
	bash hack/debian-packages.sh demo
	$(VENV)/bin/chaosdemo-local demo --action $${ACTION:-pod-delete}

demo-up: install control-plane  ## start the local tier and leave it running for kubectl
	bash hack/debian-packages.sh demo
	$(VENV)/bin/chaosdemo-local up

lint: install  ## ruff, and the import layers
	$(VENV)/bin/ruff check operator proving tests
	$(VENV)/bin/lint-imports

typecheck: install  ## mypy, strict, on the operator package
	$(VENV)/bin/mypy

test-unit: install  ## unit tests only (seconds)
	$(PYTEST) tests/unit

test-local: install packages control-plane  ## the local tier: real control plane, SIMULATED kubelets/TiKV/PD
	$(PYTEST) tests/local

test: packages lint typecheck control-plane helm  ## lint, types, import layers, unit and local-tier tests (LOAD=, SEED=)
	$(PYTEST) tests/unit tests/local

crds: install  ## regenerate crds/ and the chart's copy from the models
	$(VENV)/bin/chaosdemo crd > crds/chaosdemo.yaml
	cp crds/chaosdemo.yaml charts/chaosdemo-operator/crds/chaosdemo.yaml

helm:  ## build (or reuse) helm from its Go module
	bash hack/build-helm.sh

image:  ## the operator image (needs a Docker engine that can pull python:3.11-slim)
	docker build -t $(IMAGE) .

kind-tier: control-plane helm  ## build (or reuse) kind, the node binaries, the node rootfs and tidb-operator v1.6.6
	bash hack/debian-packages.sh kind
	bash hack/build-kind-tier.sh
	bash hack/build-node-rootfs.sh
	bash hack/build-tidb-operator.sh

demo-kind: install  ## the demo on a real kind cluster (online: published images; offline: images built here)
	KIND_CLUSTER=$(KIND_CLUSTER) IMAGE=$(IMAGE) bash hack/demo-kind.sh

demo-kind-down:  ## delete the kind cluster of demo-kind
	kind delete cluster --name $(KIND_CLUSTER)

test-kind: install control-plane helm kind-tier  ## the kind e2e suite (pytest-kind), one test per fault action
	bash hack/debian-packages.sh kind
	bash hack/with-load.sh $(LOAD) $(PY) -m pytest -p no:randomly tests/e2e -m kind -v -rsP --durations=0

bench: install control-plane  ## benchmark on the local tier at PD's real timing (about 26 min): bench/results.json, docs/benchmark.md
	$(VENV)/bin/chaosdemo-local bench
	$(VENV)/bin/chaosdemo-local bench-canary

bench-canary: install  ## the SQL canary's CPU and memory in the operator's process (1 min): bench/canary-cost.json
	$(VENV)/bin/chaosdemo-local bench-canary

bench-kind: install control-plane helm kind-tier  ## who saw each gray fault first, on the kind tier (BENCH_RUNS=3 demos per action, progress printed), or SUITE=file.yaml run once: bench/kind-results.json
	$(VENV)/bin/chaosdemo-local bench-kind $(if $(RECORD),--record $(RECORD)) $(if $(SUITE),--suite $(SUITE))

eval: install  ## the diagnosis benchmark on tests/data/diagnosis-corpus: rules, and Claude (or its local STAND-IN)
	$(VENV)/bin/chaosdemo-local eval $(if $(MIN_GRADED),--min-graded $(MIN_GRADED))

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
