#!/usr/bin/env bash
# Install the system packages llmedge builds and tests with (Debian/Ubuntu). Idempotent:
# does nothing when everything is present. Rust itself must already be installed (rustup).
set -euo pipefail
packages=(libclang-dev clang cmake ninja-build pkg-config valgrind libgtest-dev python3-venv redis-server strace iproute2)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }
rustup component list --installed 2>/dev/null | grep -q clippy || rustup component add clippy rustfmt 2>/dev/null || true
