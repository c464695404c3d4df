# llmedge developer entry points. One cargo target dir is shared by every build (cargo,
# maturin, the JNI crate) so llama.cpp compiles once.
export CARGO_TARGET_DIR ?= $(CURDIR)/target
CARGO ?= cargo
LLMEDGE := $(CARGO_TARGET_DIR)/release/llmedge
PREFIX ?= /usr/local
QUESTION ?= In two sentences, why do hospitals run language models on their own servers?

VENV ?= $(CURDIR)/.venv
FIXTURES := models/cache/fixtures

.PHONY: fixtures reference-tools llama-server deps build models demo install header header-check lint test test-rust test-c test-python test-java test-server test-deploy test-fuzz soak bench bench-python clean

deps:
	./scripts/install-deps.sh

## Every crate, test and example of the workspace, in release mode (llama.cpp compiles once here).
build: deps
	$(CARGO) build --release --workspace --all-targets

models: build
	$(LLMEDGE) fetch --all

## Seeded test fixtures written with the `gguf` Python package: LoRA adapters (PEFT folders
## and GGUF), an F16 copy of the default model (the exact base for merge and
## quantization tests), and a tiny random vision-language pair with test images and DICOM
## files (pillow, pydicom), into models/cache/fixtures (git-ignored).
fixtures: models
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check gguf numpy safetensors pillow pydicom
	$(VENV)/bin/python models/lora_fixtures.py --base models/cache/SmolLM2-135M-Instruct.Q4_1.gguf --out $(FIXTURES)/lora
	$(VENV)/bin/python models/vlm_fixtures.py --base models/cache/SmolLM2-135M-Instruct.Q4_1.gguf --out $(FIXTURES)/vlm
	test -f $(FIXTURES)/smollm2-f16.gguf || $(LLMEDGE) quantize --type F16 --allow-requantize \
	    models/cache/SmolLM2-135M-Instruct.Q4_1.gguf $(FIXTURES)/smollm2-f16.gguf

## llama.cpp's own tools at the linked llama.cpp version: the references of the LoRA-merge,
## perplexity and quantization tests (.bench/llama.cpp/build/bin).
reference-tools: build
	./bench/build-llama-tools.sh llama-export-lora llama-perplexity llama-quantize

## llama.cpp's llama-server, the reference of the serving benchmark (.bench/llama-server/build/bin).
llama-server: build
	./bench/build-llama-tools.sh llama-server

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

test-rust: fixtures reference-tools
	$(CARGO) test --release --workspace

test-c: fixtures
	./tests/c/run.sh

test-python: fixtures
	./bindings/python/test.sh

test-java: fixtures
	./bindings/java/test.sh

## `llmedge serve` with the official openai client, a real redis-server and real processes.
test-server: fixtures
	./tests/server/run.sh

## The full soak of `llmedge serve`: 10,000 requests with cancellations, disconnects and
## malformed bodies; RSS bound, one audit record per request, chain verified.
soak: build models
	$(VENV)/bin/python tests/server/soak.py --requests 10000

## The Kubernetes manifests in deploy/, validated offline against the Kubernetes JSON schemas
## (strict) and checked for the properties the deployment relies on. Needs no cluster.
test-deploy: build
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -r tests/deploy/requirements.txt
	$(VENV)/bin/python -m pytest -q tests/deploy

## Bounded, deterministic cargo-fuzz runs (fixed seed and run count) of the GGUF parser and of
## Model::load on mutated small GGUFs, from the committed corpora in fuzz/corpus; builds into
## fuzz/target. `FUZZ_TIME=600 scripts/fuzz.sh` is the long run.
test-fuzz: deps
	./scripts/fuzz.sh

## Everything CI runs.
test: lint header-check test-rust test-fuzz test-c test-python test-java test-server test-deploy

## Side-by-side speed against llama.cpp's own llama-bench and llama-server, the cost of
## grammar, safety and audit, and the saving of the image-embedding cache; writes BENCHMARKS.md.
bench: build fixtures reference-tools llama-server
	python3 bench/bench.py --llmedge $(LLMEDGE) --reference $(CARGO_TARGET_DIR)/release/examples/llama_reference
	python3 bench/features_bench.py --examples $(CARGO_TARGET_DIR)/release/examples
	python3 bench/lora_bench.py --llmedge $(LLMEDGE)
	python3 bench/vision_bench.py --examples $(CARGO_TARGET_DIR)/release/examples
	python3 bench/serving_bench.py --llmedge $(LLMEDGE)

## llmedge-python against llama-cpp-python (from PyPI, built from source for this CPU) and the
## Rust API, paired per round; replaces the `python` section of BENCHMARKS.md.
LLAMA_CPP_PYTHON ?= 0.3.36
# The same CPU kernels as llmedge's build: no AMX (see .cargo/config.toml).
AMX_FLAGS := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
AMX_OFF = $(if $(filter x86_64,$(shell uname -m)),CFLAGS="$(AMX_FLAGS)" CXXFLAGS="$(AMX_FLAGS)")
bench-python: build fixtures
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check --force-reinstall --no-deps ./bindings/python
	$(VENV)/bin/python -c "import llama_cpp" 2>/dev/null || CMAKE_ARGS="-DGGML_NATIVE=ON" $(AMX_OFF) \
	    $(VENV)/bin/python -m pip install -q --disable-pip-version-check \
	    --no-binary llama-cpp-python llama-cpp-python==$(LLAMA_CPP_PYTHON)
	$(VENV)/bin/python bench/python_bench.py --rounds 6 --reps 3 --out BENCHMARKS.md

clean:
	$(CARGO) clean
