#!/usr/bin/env bash
# Build llama.cpp's own tools (llama-bench, ...) as references for benchmarks and tests, at the
# llama.cpp version that llmedge links or as close to it as can be built.
# - Most tools: the crate's vendored llama.cpp lacks the tool sources, so they are overlaid from
#   the llama-cpp-python sdist on PyPI and built against the crate's own llama.cpp (same version).
#   Output: .bench/llama.cpp/build/bin
# - llama-server does not compile against the crate's common/ library (API drift), so it is
#   assembled from the sdist's llama.cpp tree (server, common/, vendor/, CMake) with the crate's
#   own llama.cpp library in place of the sdist's (include/, src/, ggml/; the crate's headers
#   are a superset): the inference code is exactly what llmedge links, the server's scheduling
#   is that of the sdist's release, the nearest one a package registry serves. Same CPU flags
#   (GGML_NATIVE); no TLS, no web UI, nothing downloaded at configure or build time.
#   Output: .bench/llama-server/build/bin/llama-server
# Usage: bench/build-llama-tools.sh [TARGET...]   (default: llama-bench). JOBS=N sets parallelism.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$root/.bench"
sdist_version="0.3.36"
sys_version="$(sed -n 's/^llama-cpp-sys-2 = "=\(.*\)"/\1/p' "$root/Cargo.toml")"
jobs="${JOBS:-$(nproc)}"
targets=("${@:-llama-bench}")
# The same CPU kernels as llmedge's build: no AMX (see .cargo/config.toml).
amx_off=()
if [ "$(uname -m)" = x86_64 ]; then
  flags="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
  amx_off=(-DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags")
fi
tools=()
server=0
for t in "${targets[@]}"; do
  if [ "$t" = llama-server ]; then server=1; else tools+=("$t"); fi
done
mkdir -p "$work"
cd "$work"
if [ ! -d "llama_cpp_python-$sdist_version" ]; then
  [ -f "llama_cpp_python-$sdist_version.tar.gz" ] ||
    python3 -m pip download --no-deps --no-binary :all: "llama-cpp-python==$sdist_version" -d . -q
  tar xzf "llama_cpp_python-$sdist_version.tar.gz"
fi
crate_src="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/llama-cpp-sys-2-"$sys_version"/llama.cpp | head -n1)"
[ -d "$crate_src" ] || { echo "llama-cpp-sys-2 $sys_version sources not found; run cargo build first" >&2; exit 1; }
if [ "${#tools[@]}" -gt 0 ]; then
  if [ ! -f llama.cpp/.overlaid ]; then
    rm -rf llama.cpp
    cp -r "$crate_src" llama.cpp
    rm -rf llama.cpp/tools llama.cpp/scripts
    cp -r "llama_cpp_python-$sdist_version/vendor/llama.cpp/tools" llama.cpp/tools
    cp -r "llama_cpp_python-$sdist_version/vendor/llama.cpp/scripts" llama.cpp/scripts
    touch llama.cpp/.overlaid
  fi
  cmake -S llama.cpp -B llama.cpp/build -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON "${amx_off[@]}" \
    -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
    -DBUILD_SHARED_LIBS=OFF >/dev/null
  cmake --build llama.cpp/build --target "${tools[@]}" -j "$jobs"
  echo "built: ${tools[*]} in $work/llama.cpp/build/bin"
fi
if [ "$server" = 1 ]; then
  if [ ! -f llama-server/src/.assembled ]; then
    rm -rf llama-server
    mkdir -p llama-server
    cp -r "llama_cpp_python-$sdist_version/vendor/llama.cpp" llama-server/src
    rm -rf llama-server/src/include llama-server/src/src llama-server/src/ggml
    cp -r "$crate_src/include" "$crate_src/src" "$crate_src/ggml" llama-server/src/
    touch llama-server/src/.assembled
  fi
  cmake -S llama-server/src -B llama-server/build -G Ninja \
    -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=OFF "${amx_off[@]}" \
    -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF \
    -DLLAMA_BUILD_NUMBER=0 >/dev/null
  cmake --build llama-server/build --target llama-server -j "$jobs"
  echo "built: llama-server (llama-cpp-python $sdist_version's server over llama-cpp-sys-2 $sys_version's llama.cpp) in $work/llama-server/build/bin"
fi
