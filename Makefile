# eks-jit developer entry points. `make test` is what CI runs (.ci/run); `make demo` plays the
# on-call story locally (no AWS account needed).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
LOCAL_STAMP := $(VENV)/.installed-local-$(shell cat requirements-local.lock pyproject.toml | cksum | cut -d' ' -f1)
# checkov (the second template scanner, tests/infra/test_template_scan.py) in a virtualenv of its own:
# its pins (boto3 1.35, packaging 23, networkx 2) conflict with requirements.lock.
SCAN_VENV := .venv-scan
SCAN_STAMP := $(SCAN_VENV)/.installed-$(shell cat requirements-scan.lock | cksum | cut -d' ' -f1)
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export AWS_DEFAULT_REGION ?= eu-west-1

.PHONY: install install-local install-scan lint typecheck test unit integration infra e2e package shifted-clock openapi rbac bench soak synth clean demo local layer-check

install: $(STAMP)

# Pinned: requirements.lock holds every package at its exact version (regenerate with `make lock`).
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check pip==25.3
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

# `make demo` and `make local` install only local mode: requirements-local.lock (the packages of
# `pip install '.[local]'`, at requirements.lock's versions), no CDK, browser or test tools. A venv
# that already has the full install (above) keeps it; `make test` later adds the rest.
install-local: $(LOCAL_STAMP)

$(LOCAL_STAMP): requirements-local.lock pyproject.toml
	if [ -e $(STAMP) ]; then touch $@; else \
		{ test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); } && \
		$(BIN)/pip install -q --disable-pip-version-check pip==25.3 && \
		$(BIN)/pip install -q --disable-pip-version-check --no-deps -r requirements-local.lock && \
		$(BIN)/pip install -q --disable-pip-version-check --no-deps -e . && \
		$(BIN)/pip check -q && \
		rm -f $(VENV)/.installed-local-* && touch $@; fi

# About 35 s on a 2-core machine with a warm pip cache (96 packages).
install-scan: $(SCAN_STAMP)

$(SCAN_STAMP): requirements-scan.lock
	test -x $(SCAN_VENV)/bin/python || $(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/pip install -q --disable-pip-version-check pip==25.3
	$(SCAN_VENV)/bin/pip install -q --disable-pip-version-check --no-deps -r requirements-scan.lock
	rm -f $(SCAN_VENV)/.installed-* && touch $@

# requirements.lock: the full venv as it is. requirements-local.lock: what `pip install '.[local]'`
# resolves to under requirements.lock, in a throwaway venv (about 15 s).
lock:
	$(BIN)/pip freeze --exclude-editable | grep -v '^-e' > requirements.lock
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install -q --disable-pip-version-check pip==25.3
	.venv-lock/bin/pip install -q --disable-pip-version-check -c requirements.lock '.[local]'
	.venv-lock/bin/pip freeze --exclude-editable | grep -v '^eks-jit' > requirements-local.lock
	rm -rf .venv-lock build

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

unit: install
	$(BIN)/pytest tests/unit

integration: install
	$(BIN)/pytest tests/integration

infra: install install-scan
	$(BIN)/pytest tests/infra

e2e: install
	$(BIN)/pytest tests/e2e

# The built wheel pip-installed into fresh venvs (tests/package, about 40 s): also part of `make test`.
package: install
	$(BIN)/pytest tests/package

test: lint install-scan
	$(BIN)/pytest

# The unit and integration tiers with the process clock moved by Debian's faketime
# (apt-get install faketime): a year ahead, and starting 20 s before midnight UTC so the run
# crosses it. Tests marked thread_timeout are left out: libfaketime stops Python's timed waits
# from ever timing out (docs/testing.md). .ci/run runs this after `make test`.
FAKETIME ?= faketime
SHIFTED := $(BIN)/pytest tests/unit tests/integration -m "not thread_timeout" --timeout 120 --timeout-method signal
shifted-clock: install
	$(FAKETIME) -f +400d $(SHIFTED)
	$(FAKETIME) -f '@2027-03-01 23:59:40' $(SHIFTED)

openapi: install
	$(BIN)/python -m eks_jit.server.api.openapi > docs/openapi.json

rbac: install
	$(BIN)/eks-jit rbac render --config config/example/eks-jit.yaml --out deploy/rbac

# cold start, AWS calls, time to access, revocation lag and load (bench/load.py); docs/performance.md
bench: install
	$(BIN)/python bench/run

# The lifecycle property machine, long, with faults at every call: first SOAK_LIFECYCLES grants taken
# from active to ended on the in-memory ports (tests/memory, faults at the port boundary; random
# examples seeded from SOAK_SEED, or a fresh seed, printed), then SOAK_EXAMPLES examples on moto
# (faults at botocore) for comparison. Each prints lifecycles, lifecycles/s, faults injected, leaked
# grants and lost or rewritten events (both must be 0). About 7 min on 2 cores (docs/testing.md).
SOAK_LIFECYCLES ?= 10000
SOAK_SEED ?=
SOAK_EXAMPLES ?= 10
SOAK_STEPS ?= 60
soak: install
	EKS_JIT_SOAK_LIFECYCLES=$(SOAK_LIFECYCLES) EKS_JIT_SOAK_SEED=$(SOAK_SEED) EKS_JIT_SOAK_STEPS=$(SOAK_STEPS) \
		$(BIN)/pytest -q -s tests/memory/test_lifecycle_in_memory.py
	EKS_JIT_SOAK_EXAMPLES=$(SOAK_EXAMPLES) EKS_JIT_SOAK_STEPS=$(SOAK_STEPS) \
		$(BIN)/pytest -q -s tests/property/test_lifecycle_machine.py

synth: install
	npx --yes aws-cdk@2 synth --quiet

# Builds the dependency layer for the lambda_python setting (cp3XX aarch64 wheels) and imports every
# handler on a same-pinned x86_64 build with that Python (python3.X via LAYER_CHECK_PYTHON, pyenv or
# PATH; LAMBDA_PYTHON=3.12 checks another allowed value). Not in `make test`: CI promises Python 3.11
# only. docs/deploy.md, "Lambda runtime".
layer-check: install
	$(BIN)/python -m infra.layer_check

clean:
	rm -rf $(VENV) $(SCAN_VENV) cdk.out .eks-jit .mypy_cache .ruff_cache

demo: install-local
	$(BIN)/python -m eks_jit.demo

local: install-local
	$(BIN)/eks-jit local up
