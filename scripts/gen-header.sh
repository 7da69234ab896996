#!/usr/bin/env bash
# Regenerate include/dropbear.h (src/ffi/mod.rs) and include/sshbridge.h (src/ffi/ext.rs) with cbindgen.
set -euo pipefail
cd "$(dirname "$0")/.."
# $1, $2: where to write dropbear.h and sshbridge.h (default: include/).
cbindgen --config cbindgen.toml --crate sshbridge -o "${1:-include/dropbear.h}" --quiet
cbindgen --config cbindgen-ext.toml --crate sshbridge -o "${2:-include/sshbridge.h}" --quiet
