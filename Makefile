# llmedge developer entry points. One cargo target dir is shared by every build (cargo,
# maturin, the JNI crate) so llama.cpp compiles once.
export CARGO_TARGET_DIR ?= $(CURDIR)/target
CARGO ?= cargo
LLMEDGE := $(CARGO_TARGET_DIR)/release/llmedge
PREFIX ?= /usr/local
QUESTION ?= In two sentences, why do hospitals run language models on their own servers?

.PHONY: deps build models demo install header header-check lint test test-rust test-c test-python test-java bench clean

deps:
	./scripts/install-deps.sh

## Every crate, test and example of the workspace, in release mode (llama.cpp compiles once here).
build: deps
	$(CARGO) build --release --workspace --all-targets

models: build
	$(LLMEDGE) fetch --all

## The main job: build, fetch the default model, stream an answer.
demo: build
	$(LLMEDGE) run "$(QUESTION)"

## Install libllmedge.so/.a, headers, llmedge.pc and the CMake package into PREFIX.
install: build
	./scripts/install-c.sh $(PREFIX)

## Regenerate include/llmedge.h with the pinned cbindgen.
header:
	./scripts/gen-header.sh

header-check:
	./scripts/gen-header.sh --check

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

test-rust: models
	$(CARGO) test --release --workspace

test-c: models
	./tests/c/run.sh

test-python: models
	./bindings/python/test.sh

test-java: models
	./bindings/java/test.sh

## Everything CI runs.
test: lint header-check test-rust test-c test-python test-java

## Side-by-side speed against llama.cpp's own llama-bench, and the cost of grammar, safety
## and audit; writes BENCHMARKS.md.
bench: build
	python3 bench/bench.py --llmedge $(LLMEDGE) --reference $(CARGO_TARGET_DIR)/release/examples/llama_reference
	python3 bench/features_bench.py --examples $(CARGO_TARGET_DIR)/release/examples

clean:
	$(CARGO) clean
