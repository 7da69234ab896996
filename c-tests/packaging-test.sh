#!/usr/bin/env bash
# packaging-test.sh — check that applications can build against sshbridge the documented ways.
#
#   packaging-test.sh add_subdirectory SOURCE_DIR WORK_DIR BUILD_TYPE
#       configure c-tests/consumer with add_subdirectory(SOURCE_DIR), build, run both binaries
#       (sshbridge::static and sshbridge::shared)
#   packaging-test.sh install BUILD_DIR WORK_DIR
#       `cmake --install BUILD_DIR` into WORK_DIR/prefix, then build with the installed
#       pkg-config file (shared and static) and with find_package(sshbridge), run everything
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cc=${CC:-cc}

run() {
    printf '+ %s\n' "$*"
    "$@"
}

case ${1:-} in
add_subdirectory)
    src=$2 work=$3 type=$4
    rm -rf "$work"
    run cmake -S "$here/consumer" -B "$work" -DCMAKE_BUILD_TYPE="$type" -DSSHBRIDGE_SOURCE_DIR="$src" >/dev/null
    run cmake --build "$work" -j 2 >/dev/null
    run "$work/consumer_static"
    run "$work/consumer_shared"
    # The static binary must not need libsshbridge.so at run time.
    if ldd "$work/consumer_static" | grep -q sshbridge; then
        echo "consumer_static depends on libsshbridge.so" >&2
        exit 1
    fi
    ;;
install)
    build=$2 work=$3
    rm -rf "$work"
    mkdir -p "$work"
    prefix=$work/prefix
    run cmake --install "$build" --prefix "$prefix" >/dev/null
    pc=$(find "$prefix" -name sshbridge.pc -print -quit)
    [[ -n $pc ]] || { echo "sshbridge.pc not installed" >&2; exit 1; }
    export PKG_CONFIG_PATH=$(dirname "$pc")
    run pkg-config --validate sshbridge
    echo "pkg-config: cflags: $(pkg-config --cflags sshbridge)  libs: $(pkg-config --libs sshbridge)" \
         " static: $(pkg-config --libs --static sshbridge)"
    # Shared: the documented one-liner.
    # shellcheck disable=SC2046
    run "$cc" -Wall -Wextra -Werror -o "$work/pc_shared" "$here/consumer/main.c" $(pkg-config --cflags --libs sshbridge)
    LD_LIBRARY_PATH=$(pkg-config --variable=libdir sshbridge) run "$work/pc_shared"
    # Static: the archive itself plus Libs.private.
    # shellcheck disable=SC2046
    run "$cc" -Wall -Wextra -Werror -o "$work/pc_static" "$here/consumer/main.c" $(pkg-config --cflags sshbridge) \
        "$(pkg-config --variable=staticlib sshbridge)" $(pkg-config --libs-only-l --static sshbridge | sed 's/-lsshbridge//')
    run "$work/pc_static"
    # find_package(sshbridge) against the installed CMake package.
    run cmake -S "$here/consumer" -B "$work/fp" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
    run cmake --build "$work/fp" -j 2 >/dev/null
    run "$work/fp/consumer_static"
    LD_LIBRARY_PATH=$(pkg-config --variable=libdir sshbridge) run "$work/fp/consumer_shared"
    ;;
*)
    echo "usage: $0 add_subdirectory SOURCE_DIR WORK_DIR BUILD_TYPE | install BUILD_DIR WORK_DIR" >&2
    exit 2
    ;;
esac
echo "packaging-test: $1 OK"
