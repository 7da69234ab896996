#!/usr/bin/env bash
# bench/profile.sh — where sshbridge's client spends its time during bulk transfers.
#
#   bench/profile.sh [--size-mib M] [--perf-size-mib P] [--top N] [--out DIR]
#
# Same setup as scripts/bench.sh (bench/lib.sh: one throwaway sshd, fresh keys), but the
# library is built with line tables (CARGO_PROFILE_RELEASE_DEBUG=line-tables-only, same
# optimisation, LTO and features as `cargo build --release`) into bench/target-prof, and
# examples/sshexec.c is linked against it. Then, for a download (`head -c SIZE /dev/zero`)
# and an upload (SIZE bytes into `cat > /dev/null`):
#   * valgrind --tool=callgrind on sshexec with M MiB (default 64): instructions per
#     function, all threads together (the worker thread does the crypto), self cost;
#   * perf record -e cpu-clock (software sampling: this VM exposes no hardware counters) on
#     sshexec with P MiB (default 1024) at native speed: share of CPU samples per symbol,
#     kernel included (if perf works here).
# Prints the top N (default 25) of each. --out DIR keeps the raw callgrind/perf files.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

SIZE_MIB=64 PERF_MIB=1024 TOP=25 OUT=""
while (($#)); do
    case $1 in
    --size-mib) SIZE_MIB=$2; shift ;;
    --perf-size-mib) PERF_MIB=$2; shift ;;
    --top) TOP=$2; shift ;;
    --out) OUT=$2; shift ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) bdie "unknown argument $1" ;;
    esac
    shift
done
trap bench_cleanup EXIT
trap 'exit 130' INT TERM HUP
bench_init
command -v valgrind >/dev/null || bdie "valgrind missing (scripts/install-deps.sh installs it)"

PROF_TARGET=$BENCH_ROOT/bench/target-prof
blog "cargo build --release with line tables (CARGO_TARGET_DIR=bench/target-prof)"
(cd "$BENCH_ROOT" && CARGO_TARGET_DIR=$PROF_TARGET CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
    cargo build --release --quiet) >&2 || bdie "build failed"
BIN=$BT/bin
bench_build_c "$BIN" "$PROF_TARGET/release"
bench_keys
bench_sshd
client_cmd sshbridge "echo ok"
[[ $("${CLIENT[@]}" </dev/null) == ok ]] || bdie "sshexec does not work"

# ---- callgrind ----
SIZE=$((SIZE_MIB * 1024 * 1024))
truncate -s "$SIZE" "$BT/up.bin"
cg() { # name remote-cmd stdin
    local out=$BT/callgrind.$1
    client_cmd sshbridge "$2"
    blog "callgrind: $1 of $SIZE_MIB MiB"
    # glibc copies large blocks with `rep movsb`, which callgrind counts as one instruction per
    # byte (about 30x what an AVX loop executes); the tunables make memcpy/memset use their
    # vector loops so their instruction counts are comparable with everything else.
    GLIBC_TUNABLES=glibc.cpu.x86_rep_movsb_threshold=1073741824:glibc.cpu.x86_rep_stosb_threshold=1073741824 \
        valgrind --tool=callgrind --callgrind-out-file="$out" -- "${CLIENT[@]}" <"$3" >/dev/null 2>"$out.log" ||
        bdie "valgrind failed: $(tail -5 "$out.log")"
    echo
    echo "=== callgrind, $1 of $SIZE_MIB MiB: instructions (Ir) by function (self), all threads ==="
    # callgrind_annotate splits a function by the source file its (inlined) lines come from;
    # add those pieces back up per function.
    callgrind_annotate --inclusive=no --threshold=100 --auto=no "$out" 2>/dev/null | awk '
        /^ *[0-9,]+ +\( *[0-9.]+%\) +PROGRAM TOTALS/ { t = $1; gsub(",", "", t); print t "\t(program total)"; next }
        /^ *[0-9,]+ +\( *[0-9.]+%\)  / {
            n = $1; gsub(",", "", n)
            f = $0; sub(/^ *[0-9,]+ +\( *[0-9.]+%\) +/, "", f)
            sub(/^[^: ]*:/, "", f); sub(/ \[[^]]*\]$/, "", f)
            sum[f] += n
        }
        END { for (f in sum) print sum[f] "\t" f }' | sort -t"$(printf '\t')" -k1,1nr |
        awk -F'\t' -v top="$TOP" '
            NR == 1 { total = $1; printf "  %14s %7s  %s\n", "Ir", "%", "function" }
            NR <= top + 1 { printf "  %14d %6.2f%%  %s\n", $1, 100 * $1 / total, $2 }' | cut -c1-170
    echo "--- biggest callers of memcpy/memset (inclusive Ir of the call) ---"
    callgrind_annotate --tree=caller --threshold=100 --auto=no "$out" 2>/dev/null |
        awk '/^$/ { blk = ""; next } { blk = blk "\n" $0 } /\*  .*(memcpy|memmove|memset)/ { print blk }' |
        awk '/^ *[0-9,]+ +\( *[0-9.]+%\) +</ { n = $1; gsub(",", "", n); if (n + 0 > 1000000) print }' |
        sed -E 's#/rustc/[0-9a-f]+/##; s#^( *[0-9,]+ +\( *[0-9.]+%\) +< )[^:]*:#\1#' | cut -c1-170
}
cg download "head -c $SIZE /dev/zero" /dev/null
cg upload "cat > /dev/null" "$BT/up.bin"

# ---- perf ----
if perf record -q -e cpu-clock -o "$BT/perf.test" -- true >/dev/null 2>&1; then
    PSIZE=$((PERF_MIB * 1024 * 1024))
    truncate -s "$PSIZE" "$BT/up-perf.bin"
    pf() {
        local out=$BT/perf.$1
        client_cmd sshbridge "$2"
        blog "perf: $1 of $PERF_MIB MiB"
        cat "$3" >/dev/null # in the page cache first (see scripts/bench.sh: a sparse file's first read)
        perf record -q -e cpu-clock -F 4999 -o "$out" -- "${CLIENT[@]}" <"$3" >/dev/null 2>"$out.log" ||
            bdie "perf record failed: $(tail -5 "$out.log")"
        echo
        echo "=== perf (cpu-clock samples), $1 of $PERF_MIB MiB: by thread ==="
        perf report -i "$out" --stdio --no-children --sort comm 2>/dev/null | grep -E '^ +[0-9]' || true
        echo "=== perf (cpu-clock samples), $1 of $PERF_MIB MiB: by symbol, kernel included ==="
        perf report -i "$out" --stdio --no-children --sort dso,sym 2>/dev/null | grep -E '^ +[0-9]' |
            awk -v top="$TOP" 'NR <= top' | cut -c1-150 || true
    }
    pf download "head -c $PSIZE /dev/zero" /dev/null
    pf upload "cat > /dev/null" "$BT/up-perf.bin"
else
    echo
    echo "perf record -e cpu-clock does not work here; callgrind figures only"
fi

if [[ -n $OUT ]]; then
    mkdir -p "$OUT"
    cp "$BT"/callgrind.* "$BT"/perf.download "$BT"/perf.upload "$OUT"/ 2>/dev/null || true
    blog "raw profiles copied to $OUT"
fi
