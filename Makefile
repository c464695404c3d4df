# llmedge developer entry points. One cargo target dir is shared by every build (cargo,
# maturin, the JNI crate) so llama.cpp compiles once.
export CARGO_TARGET_DIR ?= $(CURDIR)/target
CARGO ?= cargo
LLMEDGE := $(CARGO_TARGET_DIR)/release/llmedge
QUESTION ?= In two sentences, why do hospitals run language models on their own servers?

.PHONY: deps build models demo test test-rust lint bench clean

deps:
	./scripts/install-deps.sh

build: deps
	$(CARGO) build --release --workspace --all-targets

models: build
	$(LLMEDGE) fetch --all

## The main job: build, fetch the default model, stream an answer.
demo: build
	$(LLMEDGE) run "$(QUESTION)"

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

test-rust: models
	$(CARGO) test --release --workspace

## Everything CI runs.
test: lint test-rust

## Side-by-side speed against llama.cpp's own llama-bench; writes BENCHMARKS.md.
bench: build
	python3 bench/bench.py --llmedge $(LLMEDGE) --reference $(CARGO_TARGET_DIR)/release/examples/llama_reference

clean:
	$(CARGO) clean
