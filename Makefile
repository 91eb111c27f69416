# langflow-platform: charts, toolchain and test harness. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
ROOT := $(abspath .)
include tools/versions.env
export PATH := $(ROOT)/.tools/bin:$(ROOT)/.venv/bin:$(PATH)
PY := $(ROOT)/.venv/bin/python
PYTEST_ARGS ?=
MARK ?=
CLUSTER ?= local
CHARTS := $(sort $(wildcard charts/langflow-*))
COMPONENT_CHARTS := $(filter-out charts/langflow-common charts/langflow-platform,$(CHARTS))

.PHONY: help tools deps lock test test-static lint demo cluster-up cluster-down loadtest dashboards schemas docs images package publish clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

tools: ## build/install the pinned toolchain into .tools and .venv (cached under ~/.cache; a no-op when warm)
	@tools/install.sh all

deps: ## vendor each chart's file:// dependencies (components first, then the umbrella)
	@mkdir -p .tools && flock .tools/.deps.lock bash -c 'for c in $(COMPONENT_CHARTS) charts/langflow-platform; do helm dependency update --skip-refresh $$c >/dev/null || exit 1; done'

lock: ## re-pin the Python dependencies after editing pyproject.toml
	@.venv/bin/uv pip compile -q pyproject.toml worker/pyproject.toml --all-extras --python-version 3.11 -o requirements.lock

test: tools deps ## the whole suite (MARK=<marker> for one layer; CLUSTER=local|kind|existing)
	@mkdir -p reports
	@$(PY) -m pytest $(if $(MARK),-m "$(MARK)") --cluster $(CLUSTER) --durations=25 $(PYTEST_ARGS)

test-static: ## lint, render, schema, policy, alerts and dashboards checks (no cluster)
	@$(MAKE) --no-print-directory test MARK="render or schema or policy or alerts or dashboards" PYTEST_ARGS="$(PYTEST_ARGS)"

lint: tools deps ## ruff and helm lint --strict only
	@ruff check tests loadtest dashboards worker tools images charts && ruff format --check tests loadtest dashboards worker tools images charts
	@for c in $(CHARTS); do helm lint --strict $$c >/dev/null || { helm lint --strict $$c; exit 1; }; done

demo: tools deps ## the local cluster + its real node (or CLUSTER=kind|existing), the dev profile running, a URL on 127.0.0.1
	@$(PY) -m tests.harness.demo --cluster $(CLUSTER)

cluster-up: tools ## start the local control plane, kwok nodes and the real node (NODE=0: kwok only)
	@$(PY) -m tests.harness.cluster up $(if $(filter 0,$(NODE)),--no-real-node)

cluster-down: ## stop the local cluster and its real node; leaves nothing behind (processes, mounts, network, firewall)
	@$(PY) -m tests.harness.cluster down

loadtest: tools deps ## Locust against HOST (default: a local installation), then (local) the capacity curve, the runtime's throughput and fresh pod starts on the real node, then reports/load.html; DURATION=seconds STEPS=10,20,... SLOTS=1,2,3 STARTS=20
	@$(PY) -m loadtest.run $(if $(HOST),--host $(HOST)) $(if $(DURATION),--duration $(DURATION))
	@$(if $(HOST),,$(PY) -m loadtest.capacity $(if $(STEPS),--steps $(STEPS)))
	@$(if $(HOST),,$(PY) -m loadtest.throughput $(if $(SLOTS),--slots $(SLOTS)))
	@$(if $(HOST),,$(PY) -m loadtest.starts $(if $(STARTS),--ide $(STARTS)))
	@$(PY) -m loadtest.page

dashboards: tools ## regenerate dashboards/*.json from dashboards/*.py
	@$(PY) -m dashboards.generate

schemas: tools ## copy the Kubernetes types the values schemas refer to from the pinned OpenAPI into them
	@$(PY) tools/k8s_values_schema.py --openapi "$$(go env GOMODCACHE)/k8s.io/kubernetes@$(KUBERNETES_VERSION)/api/openapi-spec/swagger.json" charts/*/values.schema.json

docs: tools ## regenerate every chart's README from its values.yaml (helm-docs)
	@helm-docs --chart-search-root charts --sort-values-order file --skip-version-footer >/dev/null

images: tools ## build the images the charts run here (buildah + mmdebstrap; cached archives in ~/.cache)
	@$(PY) -m images.build

package: tools deps ## build versioned chart archives into dist/
	@mkdir -p dist && for c in $(COMPONENT_CHARTS) charts/langflow-common charts/langflow-platform; do helm package $$c -d dist >/dev/null || exit 1; done; ls dist

publish: package ## push dist/*.tgz to REGISTRY=oci://host/path
	@test -n "$(REGISTRY)" || { echo "set REGISTRY=oci://..."; exit 1; }
	@for t in dist/*.tgz; do helm push $$t $(REGISTRY) $(HELM_PUSH_ARGS) || exit 1; done

clean: ## remove generated files (keeps the toolchain cache in ~/.cache)
	rm -rf reports dist charts/*/charts charts/*/tmpcharts
