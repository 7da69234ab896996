#!/usr/bin/env bash
# Regenerate include/dropbear.h from the Rust source (src/ffi/mod.rs) with cbindgen.
set -euo pipefail
cd "$(dirname "$0")/.."
cbindgen --config cbindgen.toml --crate sshbridge -o "${1:-include/dropbear.h}" --quiet
