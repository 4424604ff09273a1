# Local servers (dev/env.py), included by the top-level Makefile.
#   make env          start every server, idempotently (builds what is missing first)
#   make env-status   up/down, version and address of each
#   make env-down     stop them all, and the node (dev/node.py down) first
#   make env-node     a real single-node cluster beside them (dev/node.py; root)
#   make env-node-status
#   make -s env-vars  the `export` lines for tests and the demo; eval them
# Reset everything: `make env-down`, then delete $DATARCH_ENV_DIR (/var/tmp/datarch-env).

# Resolved where this file is, so the including Makefile's directory does not matter.
DATARCH_ENV_PY := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))/env.py
DATARCH_NODE_PY := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))/node.py
DATARCH_ENV_PYTHON ?= python3

.PHONY: env env-status env-down env-vars env-node env-node-status

env:
	$(DATARCH_ENV_PYTHON) $(DATARCH_ENV_PY) up

env-status:
	$(DATARCH_ENV_PYTHON) $(DATARCH_ENV_PY) status

env-down:
	$(DATARCH_ENV_PYTHON) $(DATARCH_NODE_PY) down
	$(DATARCH_ENV_PYTHON) $(DATARCH_ENV_PY) down

env-node: env
	$(DATARCH_ENV_PYTHON) $(DATARCH_NODE_PY) up

env-node-status:
	$(DATARCH_ENV_PYTHON) $(DATARCH_NODE_PY) status

env-vars:
	@$(DATARCH_ENV_PYTHON) $(DATARCH_ENV_PY) vars
