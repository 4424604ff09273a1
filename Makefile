# The two commands that matter: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# The servers' addresses and credentials, for every recipe that needs them.
ENV_VARS = eval "$$($(DATARCH_ENV_PYTHON) $(DATARCH_ENV_PY) vars)"
# The real node's (dev/node.py): DATARCH_NODE_*, never KUBECONFIG.
NODE_VARS = eval "$$($(DATARCH_ENV_PYTHON) $(DATARCH_NODE_PY) vars)"

include dev/env.mk

.PHONY: venv lint crds test test-unit test-integration test-e2e test-node demo bench mutation clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

lint: venv
	$(BIN)/ruff check operator tests bench dev
	$(BIN)/ruff format --check operator tests bench dev
	MYPYPATH=operator $(BIN)/mypy
	$(BIN)/lint-imports

# crds/ carries exactly what `datarch crd` prints; a unit test fails when it differs.
crds: venv
	$(BIN)/datarch crd > crds/datarch.io_dataarchitectureclaims.yaml
	cp crds/datarch.io_dataarchitectureclaims.yaml helm/datarch/crds/

# Every tier, the real node's included: `make env-node` builds and starts it (needs root).
test: venv env env-node lint
	$(ENV_VARS) && $(NODE_VARS) && $(BIN)/pytest tests

test-unit: venv env
	$(ENV_VARS) && $(BIN)/pytest tests/unit

test-integration: venv env
	$(ENV_VARS) && $(BIN)/pytest tests/integration

test-e2e: venv env
	$(ENV_VARS) && $(BIN)/pytest tests/e2e

# The chart on a real single-node cluster (tests/node), alone.
test-node: venv env env-node
	$(ENV_VARS) && $(NODE_VARS) && $(BIN)/pytest tests/node

demo: venv env
	$(ENV_VARS) && $(BIN)/python dev/demo.py

bench: venv env
	$(ENV_VARS) && for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

# Mutation testing, not part of `make test`: cosmic-ray changes probes/, comparison/ and
# verification.py one mutant at a time (in place, restored after each: do not edit them
# meanwhile) and reruns the tests against each. All of it takes
# hours on two cores; a session in .mutation/ resumes where it stopped. Narrow it with
#   make mutation MUTATE=operator/datarch/comparison/redis.py MUTATION_TESTS=tests/unit/test_compare_redis.py
MUTATE ?= operator/datarch/probes operator/datarch/comparison operator/datarch/verification.py
MUTATION_TESTS ?= tests/unit tests/integration
mutation: venv env
	$(BIN)/pip install --quiet -e '.[mutation]'
	$(ENV_VARS) && $(BIN)/python dev/mutation.py $(MUTATE) -- $(MUTATION_TESTS)

clean:
	rm -rf .mutation $(VENV) .mypy_cache .ruff_cache .pytest_cache
