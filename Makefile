# Landlord: every target a developer or CI needs. `make` alone prints this help.
SHELL := /bin/bash
CARGO ?= cargo

.DEFAULT_GOAL := help
.PHONY: soak help build test lint fmt crds chart ops-test image image-test dev e2e bench bench-scale

# The container image: `make image` tags what the chart runs by default (image.repository,
# appVersion = the crate's version).
IMAGE ?= ghcr.io/landlord-dev/landlord
VERSION := $(shell sed -n '/^\[package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)
MUSL := x86_64-unknown-linux-musl
# `image`: release tuned for build time (Cargo.toml says why); IMAGE_PROFILE=release for speed.
IMAGE_PROFILE ?= image
IMAGE_CONTEXT := target/image/context
# The integration tests mostly wait on API servers: four at once on two cores (CI's machine)
# take about 40 % less time than two. RUST_TEST_THREADS=2 make test to change it.
export RUST_TEST_THREADS ?= 4

help: ## Show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z0-9-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Build every binary (landlord, kube-test, kubectl-tenant)
	$(CARGO) build --workspace --bins

test: ## Run all tests: unit, CRD, kube-test, integration, kubectl, chart, ops, image; then again on a real control plane
	$(CARGO) test --workspace
	bash tests/kubectl-dev.sh
	python3 tests/chart_test.py
	$(MAKE) ops-test
	@# The image build is CPU work and the real-cluster suites mostly wait on the API server:
	@# the build runs beside them at the lowest priority, and its report follows theirs.
	@mkdir -p target; nice -n 19 $(MAKE) --no-print-directory image-test >target/image-test.log 2>&1 & image=$$!; \
	  bash tests/real-cluster.sh; cluster=$$?; \
	  wait $$image; built=$$?; cat target/image-test.log; \
	  echo "real control plane: exit $$cluster; image: exit $$built"; \
	  test $$cluster = 0 && test $$built = 0

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

image: ## Container image ghcr.io/landlord-dev/landlord:<version>: a static musl binary, FROM scratch, built with podman (needs musl-tools, podman)
	@command -v musl-gcc >/dev/null || { echo "musl-gcc is missing: apt-get install musl-tools (ring and zstd compile C for musl)"; exit 2; }
	@command -v podman >/dev/null || { echo "podman is missing: apt-get install podman"; exit 2; }
	rustup target add $(MUSL)
	$(CARGO) build --target $(MUSL) --target-dir target/image --profile $(IMAGE_PROFILE) --no-default-features --bin landlord
	rm -rf $(IMAGE_CONTEXT) && mkdir -p $(IMAGE_CONTEXT)/linux-amd64/etc/ssl/certs
	install -m 0755 target/image/$(MUSL)/$(IMAGE_PROFILE)/landlord $(IMAGE_CONTEXT)/linux-amd64/landlord
	install -m 0644 /etc/ssl/certs/ca-certificates.crt $(IMAGE_CONTEXT)/linux-amd64/etc/ssl/certs/
	podman --storage-driver vfs build --quiet --no-cache --target prebuilt -f Dockerfile --build-arg TARGETARCH=amd64 \
	  --build-arg VERSION=$(VERSION) --build-arg REVISION="$$(git rev-parse HEAD)" \
	  --build-arg CREATED="$$(git log -1 --format=%cI)" -t $(IMAGE):$(VERSION) $(IMAGE_CONTEXT)
	-podman --storage-driver vfs image prune --force >/dev/null 2>&1

image-test: ## Build the image and check it: user, entrypoint, one layer, size, and the binary copied back out (installs podman, musl-tools)
	python3 tests/image_test.py

dev: ## Run `landlord dev`: embedded API server, operator and example tenants
	$(CARGO) run --release -- dev

e2e: ## Integration suites, admission table, kube-test differential and chart against KUBECONFIG
	@test -n "$$KUBECONFIG" || { echo "set KUBECONFIG to a cluster you may write to"; exit 2; }
	@# --workspace, as `make test` builds them: with -p each package's features differ, and
	@# cargo would build landlord and kube-test a second time.
	LANDLORD_E2E=1 $(CARGO) test --workspace --test integration --test archive_roundtrip --test differential
	python3 tests/chart_test.py --cluster

soak: ## Long reliability runs: the API server gone for 60 s, API faults over 100 tenants (make test: 15 s, 20)
	LANDLORD_OUTAGE_SECS=60 $(CARGO) test --workspace --test integration outage -- --nocapture
	LANDLORD_FAULT_TENANTS=100 $(CARGO) test --workspace --test integration faults -- --nocapture

bench: ## Benchmarks, printed as ratios against baselines measured in the same run
	$(CARGO) bench --bench engine
	$(CARGO) bench --bench scale -- --tenants 500
	$(CARGO) bench --bench archive
	$(CARGO) bench --bench migration

bench-scale: ## The controller at scale: 10,000 tenants (TENANTS=N for fewer; ARGS=--real for KUBECONFIG)
	$(CARGO) bench --bench scale -- --tenants $(or $(TENANTS),10000) $(ARGS)
