# Local servers (dev/env.py), included by the top-level Makefile.
#   make env          start every server, idempotently (builds what is missing first)
#   make env-status   up/down, version and address of each
#   make env-down     stop them all
#   make -s env-vars  the `export` lines for tests and the demo; eval them
# Reset everything: `make env-down`, then delete $DATARCH_ENV_DIR (/var/tmp/datarch-env).

# Resolved where this file is, so the including Makefile's directory does not matter.
DATARCH_ENV_PY := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))/env.py
DATARCH_ENV_PYTHON ?= python3

.PHONY: env env-status env-down env-vars

env:
	$(DATARCH_ENV_PYTHON) $(DATARCH_ENV_PY) up

env-status:
	$(DATARCH_ENV_PYTHON) $(DATARCH_ENV_PY) status

env-down:
	$(DATARCH_ENV_PYTHON) $(DATARCH_ENV_PY) down

env-vars:
	@$(DATARCH_ENV_PYTHON) $(DATARCH_ENV_PY) vars
