#!/usr/bin/env bash
# bench/copies.sh — bytes copied in user space per payload byte (issue 16), measured with an
# LD_PRELOAD shim (bench/memcount.c) that sums the sizes of memcpy/memmove calls.
#
#   bench/copies.sh [--size-mib M] [--callers]   (default 64 MiB; root, like scripts/bench.sh)
#
# --callers also lists, for sshbridge's runs, the functions that made the big copies (return
# addresses resolved against the symbol tables of sshexec and examples/channels).
#
# Against one throwaway sshd (bench/lib.sh), each run once under the shim:
#   C API download    examples/sshexec.c 'head -c SIZE /dev/zero' > /dev/null
#   C API upload      examples/sshexec.c 'cat > /dev/null' < SIZE-byte sparse file
#   Rust API download examples/channels.rs throughput 1 (Channel::read into the caller's buffer)
#   the same sshexec linked against the --features aws-lc build, when scripts/bench.sh has built
#     it (bench/target-awslc), to tell the cipher's own copies from the rest
#   ssh -c aes128-gcm@openssh.com download and upload, for comparison
# and each client's connect + 'true' + exit, whose copies are subtracted. Reported: bytes in
# memcpy and in memmove calls of >= 256 bytes per payload byte. Copies the kernel makes
# (socket/pipe read and write) are not counted; copies the compiler inlined (fixed small sizes)
# are not seen. A copy per byte of 1.00 = every payload byte moved once in user space.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

SIZE_MIB=64
CALLERS=0
while (($#)); do
    case $1 in
    --size-mib) SIZE_MIB=$2; shift ;;
    --callers) CALLERS=1 ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) bdie "unknown argument $1 (try --help)" ;;
    esac
    shift
done
SIZE=$((SIZE_MIB * 1048576))

trap bench_cleanup EXIT
trap 'exit 130' INT TERM HUP
bench_init
bench_build_lib
blog "cargo build --release --example channels"
(cd "$BENCH_ROOT" && cargo build -q --release --example channels) >&2 || bdie "examples/channels failed to build"
BIN=$BT/bin
bench_build_c "$BIN"
gcc -O2 -Wall -Wextra -shared -fPIC -fno-builtin -fno-tree-loop-distribute-patterns \
    -o "$BIN/memcount.so" "$BENCH_ROOT/bench/memcount.c" -ldl || bdie "cannot build memcount.so"
AWSLC_A=$BENCH_ROOT/bench/target-awslc/release/libsshbridge.a
CLIENTS=(sshbridge ssh-gcm)
if [[ -f $AWSLC_A ]]; then
    gcc -O2 -g -Wall -Wextra -I"$BENCH_ROOT/include" -o "$BIN/sshexec-awslc" "$BENCH_ROOT/examples/sshexec.c" \
        "$AWSLC_A" "${BENCH_NATIVE_LIBS[@]}" || bdie "cannot build sshexec against the aws-lc build"
    CLIENTS=(sshbridge sshbridge-awslc ssh-gcm)
fi
bench_keys
bench_sshd
truncate -s "$SIZE" "$BT/upload.bin"
R=$BT/copies
mkdir -p "$R"

# counted NAME STDIN CMD...: run CMD under the shim, stdout to /dev/null; result in $R/NAME.
counted() {
    local name=$1 in=$2
    shift 2
    local c=()
    ((CALLERS)) && c=(MEMCOUNT_CALLERS=1)
    env "${c[@]}" MEMCOUNT_OUT="$R/$name" LD_PRELOAD="$BIN/memcount.so" "$@" <"$in" >/dev/null 2>>"$BT/stderr.log" ||
        bdie "$name failed: $(tail -3 "$BT/stderr.log")"
}
# field NAME KEY: a value from the result line (the client's own process: the first line).
field() { head -1 "$R/$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

CH=("$BENCH_ROOT/target/release/examples/channels" -p "$SSHD_PORT" -l "$BENCH_USER" -i "$BT/id_ed25519"
    -k "$HOSTKEY_PUB" 127.0.0.1)
for c in "${CLIENTS[@]}"; do
    client_cmd "$c" "true"
    counted "$c.conn" /dev/null "${CLIENT[@]}"
    client_cmd "$c" "head -c $SIZE /dev/zero"
    counted "$c.down" /dev/null "${CLIENT[@]}"
    client_cmd "$c" "cat > /dev/null"
    counted "$c.up" "$BT/upload.bin" "${CLIENT[@]}"
done
counted rust.conn /dev/null "${CH[@]}" throughput 1 0
counted rust.down /dev/null "${CH[@]}" throughput 1 "$SIZE_MIB"

per_byte() { # RUN BASELINE KEY
    awk -v a="$(field "$1" "$3")" -v b="$(field "$2" "$3")" -v s="$SIZE" 'BEGIN { printf "%.2f", (a - b) / s }'
}
echo "Bytes copied in user space per payload byte ($SIZE_MIB MiB; memcpy/memmove calls >= 256 bytes,"
echo "minus the same client's connect + 'true' + exit; kernel copies not counted):"
printf '  %-44s %8s %8s %8s\n' run memcpy memmove total
row() { # LABEL RUN BASELINE
    local m v
    m=$(per_byte "$2" "$3" memcpy_big_bytes) v=$(per_byte "$2" "$3" memmove_big_bytes)
    printf '  %-44s %8s %8s %8s\n' "$1" "$m" "$v" "$(awk -v m="$m" -v v="$v" 'BEGIN { printf "%.2f", m + v }')"
}
row "sshbridge C API (sshexec) download" sshbridge.down sshbridge.conn
row "sshbridge C API (sshexec) upload" sshbridge.up sshbridge.conn
row "sshbridge Rust API (Channel::read) download" rust.down rust.conn
if [[ -f $R/sshbridge-awslc.down ]]; then
    row "sshbridge C API, --features aws-lc, download" sshbridge-awslc.down sshbridge-awslc.conn
    row "sshbridge C API, --features aws-lc, upload" sshbridge-awslc.up sshbridge-awslc.conn
fi
row "ssh -c aes128-gcm@openssh.com download" ssh-gcm.down ssh-gcm.conn
row "ssh -c aes128-gcm@openssh.com upload" ssh-gcm.up ssh-gcm.conn

# Callers: "caller KIND bytes=B calls=N obj=FILE off=0xOFF" lines, resolved with nm.
callers() { # RUN PROGRAM
    python3 - "$R/$1" "$SIZE" "$2" <<'PY'
import bisect, subprocess, sys
syms = {}
def resolve(obj, off):
    if obj not in syms:
        out = subprocess.run(["nm", "-C", "--defined-only", "-n", obj], capture_output=True, text=True).stdout
        rows = []
        for line in out.splitlines():
            parts = line.split(" ", 2)
            if len(parts) == 3 and parts[1] in "tTwW":
                rows.append((int(parts[0], 16), parts[2]))
        syms[obj] = rows
    rows = syms[obj]
    i = bisect.bisect_right([a for a, _ in rows], off) - 1
    return rows[i][1] if i >= 0 else "?"
size = int(sys.argv[2])
for line in open(sys.argv[1]):
    if not line.startswith("  caller"):
        continue
    f = dict(kv.split("=", 1) for kv in line.split()[2:])
    per = int(f["bytes"]) / size
    if per < 0.05:
        continue
    name = resolve(f["obj"] or sys.argv[3], int(f["off"], 16))
    print(f"    {line.split()[1]:8s} {per:5.2f}/byte  {int(f['calls']):8d} calls  {name[:110]}")
PY
}
if ((CALLERS)); then
    for run in sshbridge.down sshbridge.up rust.down sshbridge-awslc.down sshbridge-awslc.up; do
        [[ -f $R/$run ]] || continue
        echo "Callers of the big copies, $run (bytes per payload byte, the connect included):"
        case $run in
        rust.*) callers "$run" "${CH[0]}" ;;
        sshbridge-awslc.*) callers "$run" "$BIN/sshexec-awslc" ;;
        *) callers "$run" "$BIN/sshexec" ;;
        esac
    done
fi
