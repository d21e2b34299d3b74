# Two commands on a fresh machine: `make run` (local stack + bridge) and `make test` (everything).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= deploy/local/bridge.yaml
STACK := deploy/local/stack.sh

.PHONY: run test check unit integration reliability venv constraints stack-up stack-up-secure stack-down stack-status stack-clean send-test bench bench-smoke tools chart-schema

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	touch $@

# Re-resolve and pin every dependency after changing pyproject.toml.
constraints:
	rm -rf $(VENV).constraints && $(PYTHON) -m venv $(VENV).constraints
	$(VENV).constraints/bin/pip install -q -e '.[test]'
	{ head -n 2 constraints.txt; $(VENV).constraints/bin/pip freeze --exclude-editable; } > constraints.new
	mv constraints.new constraints.txt && rm -rf $(VENV).constraints

stack-up:
	$(STACK) up

# The same node with SASL_SSL/SCRAM-SHA-512 on 9094 and mutual TLS on 9095 too; client files in .stack/dev/secure/
# (deploy/local/bridge-sasl.yaml and bridge-mtls.yaml use them). `make stack-down` stops it.
stack-up-secure:
	$(STACK) up --secure

stack-down:
	$(STACK) down

stack-status:
	$(STACK) status

stack-clean:
	$(STACK) clean

# The local stack, then the bridge in the foreground (Ctrl-C stops the bridge; `make stack-down` the stack).
run: venv stack-up
	@echo
	@echo "bridge: POST http://127.0.0.1:8000/webhooks/lettermint-transactional"
	@echo "send a signed test event from another terminal:  make send-test  (or EVENT=message.hard_bounced make send-test)"
	@echo "read it back:  $(BIN)/bridge --config $(CONFIG) consume webhooks.message.delivered"
	@echo
	$(BIN)/bridge --config $(CONFIG) serve

send-test: venv
	$(BIN)/bridge --config $(CONFIG) send-test --event $${EVENT:-message.delivered}

check: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest -m "not integration and not reliability" -q

integration: venv
	$(BIN)/pytest -m integration -q

# Failure scenarios against real brokers (one and three) and the registry; prints the reliability table.
reliability: venv
	$(BIN)/pytest tests/reliability -q

# Lint, types, then unit and integration tests against a real Kafka broker and schema registry
# (started for the session by tests/integration/conftest.py unless BRIDGE_TEST_KAFKA/_REGISTRY are set).
test: check
	$(BIN)/pytest -q --cov=bridge --cov-report=term-missing:skip-covered --cov-fail-under=90

# The bridge against the bare HTTP ceiling and a bare producer under wrk, on the local stack (~3 minutes;
# apt install wrk). Results: bench/results/<UTC time>.{json,md,png}. Options: BENCH_ARGS="--profile" etc.
bench: venv stack-up
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# The same, one short round (what CI runs in tests/integration/test_bench.py).
bench-smoke: venv stack-up
	$(BIN)/python -m benchmarks --smoke $(BENCH_ARGS)

# Pinned helm and kubeconform, built from the Go module proxy into .cache/tools/bin (about 4 minutes cold,
# seconds after; tests/unit/test_helm.py runs it too).
tools:
	deploy/tools.sh

# Rewrite deploy/helm/webhook-kafka-bridge/values.schema.json from `bridge config-schema` and the chart's values.
chart-schema: venv
	$(BIN)/python -m scripts.chart_schema
