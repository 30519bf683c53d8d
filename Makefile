# Landlord: every target a developer or CI needs. `make` alone prints this help.
SHELL := /bin/bash
CARGO ?= cargo

.DEFAULT_GOAL := help
.PHONY: help build test lint fmt crds chart ops-test dev e2e bench bench-scale

help: ## Show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Build every binary (landlord, kube-test, kubectl-tenant)
	$(CARGO) build --workspace --bins

test: ## Run all tests: unit, CRD, kube-test, integration, kubectl, chart, ops; then again on a real control plane
	$(CARGO) test --workspace
	bash tests/kubectl-dev.sh
	python3 tests/chart_test.py
	$(MAKE) ops-test
	bash tests/real-cluster.sh

lint: ## rustfmt, clippy with warnings denied, cargo deny (deny.toml: licences, bans, sources; installs cargo-deny when missing, ~3 min)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	@$(CARGO) deny --version >/dev/null 2>&1 || $(CARGO) install --locked cargo-deny@0.20.2
	$(CARGO) deny check --hide-inclusion-graph licenses bans sources

fmt: ## Format the code
	$(CARGO) fmt --all

crds: ## Regenerate crds/ from the Rust types
	rm -f crds/*.yaml
	$(CARGO) run --quiet -- crdgen --dir crds
	python3 tests/chart_test.py --update

chart: ## Helm chart: lint, render, schema, install.yaml in sync, kubectl against kube-test
	python3 tests/chart_test.py

ops-test: ## Argo CD health checks (Lua 5.1), alerts (promtool), Grafana dashboard; installs lua5.1 and promtool if missing
	python3 tests/argocd_health_test.py
	python3 tests/alerts_test.py
	python3 tests/dashboard_test.py

dev: ## Run `landlord dev`: embedded API server, operator and example tenants
	$(CARGO) run --release -- dev

e2e: ## Integration suites, admission table, kube-test differential and chart against KUBECONFIG
	@test -n "$$KUBECONFIG" || { echo "set KUBECONFIG to a cluster you may write to"; exit 2; }
	LANDLORD_E2E=1 $(CARGO) test -p landlord --test integration
	LANDLORD_E2E=1 $(CARGO) test -p landlord --test archive_roundtrip
	LANDLORD_E2E=1 $(CARGO) test -p kube-test --test differential
	python3 tests/chart_test.py --cluster

bench: ## Benchmarks, printed as ratios against baselines measured in the same run
	$(CARGO) bench --bench engine
	$(CARGO) bench --bench scale -- --tenants 500
	$(CARGO) bench --bench archive

bench-scale: ## The controller at scale: 10,000 tenants (TENANTS=N for fewer; ARGS=--real for KUBECONFIG)
	$(CARGO) bench --bench scale -- --tenants $(or $(TENANTS),10000) $(ARGS)
