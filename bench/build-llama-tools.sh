#!/usr/bin/env bash
# Build llama.cpp's own tools (llama-bench, ...) at exactly the llama.cpp version that llmedge
# links, as references for benchmarks and tests. The crate's vendored llama.cpp lacks the tool
# sources, so they are overlaid from the llama-cpp-python sdist on PyPI.
# Usage: bench/build-llama-tools.sh [TARGET...]   (default: llama-bench). Output: .bench/llama.cpp/build/bin
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$root/.bench"
sdist_version="0.3.36"
sys_version="$(sed -n 's/^llama-cpp-sys-2 = "=\(.*\)"/\1/p' "$root/Cargo.toml")"
targets=("${@:-llama-bench}")
mkdir -p "$work"
cd "$work"
crate_src="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/llama-cpp-sys-2-"$sys_version"/llama.cpp | head -n1)"
[ -d "$crate_src" ] || { echo "llama-cpp-sys-2 $sys_version sources not found; run cargo build first" >&2; exit 1; }
if [ ! -d "llama_cpp_python-$sdist_version" ]; then
  python3 -m pip download --no-deps --no-binary :all: "llama-cpp-python==$sdist_version" -d . -q
  tar xzf "llama_cpp_python-$sdist_version.tar.gz"
fi
if [ ! -f llama.cpp/.overlaid ]; then
  rm -rf llama.cpp
  cp -r "$crate_src" llama.cpp
  rm -rf llama.cpp/tools llama.cpp/scripts
  cp -r "llama_cpp_python-$sdist_version/vendor/llama.cpp/tools" llama.cpp/tools
  cp -r "llama_cpp_python-$sdist_version/vendor/llama.cpp/scripts" llama.cpp/scripts
  touch llama.cpp/.overlaid
fi
cmake -S llama.cpp -B llama.cpp/build -G Ninja -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
  -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
  -DBUILD_SHARED_LIBS=OFF >/dev/null
cmake --build llama.cpp/build --target "${targets[@]}" -j "$(nproc)"
echo "built: ${targets[*]} in $work/llama.cpp/build/bin"
