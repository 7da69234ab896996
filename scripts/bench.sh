#!/usr/bin/env bash
# bench.sh — sshbridge against OpenSSH ssh, Dropbear dbclient and libssh2, on one local sshd.
#
#   scripts/bench.sh [--quick] [--reps N] [--size-mib M] [--handshake-only] [--server-only]
#                    [--channels-only]
#
#   default   5 repetitions, 1 GiB transfers (about 10-15 minutes on 2 cores)
#   --quick   2 repetitions, 256 MiB transfers
#   --handshake-only   only the post-quantum handshake figures (below), 6 x REPS connects each
#   --server-only      only the server figures (below): examples/serve vs sshd, REPS downloads each
#   --channels-only    only the channel figures (below): 4 channels on one connection vs 4 ssh
#
# Needs root (the throwaway sshd switches to the test account sshbtest); installs missing
# packages with scripts/install-deps.sh. Builds the library (cargo rustc --release as CMake does, and
# --no-default-features into bench/target-modern for the size figure, --features aws-lc into
# bench/target-awslc), the C programs of
# bench/ and examples/sshexec.c; starts ONE sshd on a free 127.0.0.1 port with its own config
# (fresh ed25519 host key, UsePAM no, StrictModes no, MaxStartups 200, LogLevel DEBUG), and
# authorises a fresh ed25519 user key; everything is undone on exit.
#
# Measured, every client running the same remote commands with ed25519 key authentication,
# repetitions interleaved (round-robin, rotating start) so drift hits every client alike:
#   download  `head -c SIZE /dev/zero` to /dev/null      wall time, client CPU (user+sys)
#   upload    SIZE-byte file -> `cat > /dev/null`           wall time, client CPU
#   floor     bench/hop.c, no SSH: SIZE received over loopback TCP (what every client pays),
#             and that plus the C API's socketpair to an application thread (sshexec's download
#             without decryption and framing); the same for sending; CPU per GiB, REPS runs
#   connect   connect + authenticate + `true` + exit        wall time, client CPU, max RSS
#   memory    RSS added per idle session, 100 sessions in one process (bench/rss_sessions.c)
#   size      stripped libsshbridge.so, all algorithms, --no-default-features and --features aws-lc;
#             and bench/sizefloor, the floor under the modern build: std and its crypto, no SSH
#   handshake connect + authenticate + `true` + exit against a second sshd, OpenSSH 10.0
#             (/opt/openssh-10), KexAlgorithms mlkem768x25519-sha256,curve25519-sha256: client
#             wall and CPU of sshbridge (ML-KEM) vs OpenSSH 10.0's ssh (ML-KEM, and forced to
#             curve25519-sha256 for what ML-KEM itself costs); kex read from that sshd's log
#   server    the other way round (issue 11): OpenSSH's ssh downloads SIZE (`head -c SIZE
#             /dev/zero` > /dev/null) from sshbridge's example server (examples/serve, same host
#             key, the user key authorised, started on a free port) and from the sshd above,
#             interleaved; throughput (wall of the whole command) and SERVER CPU per GiB: utime +
#             stime + cutime + cstime of the server's main process (/proc/PID/stat) before the
#             connect and after the session's processes were reaped, so serve's threads and its
#             `sh -c`/`head` children count, and so do sshd's sshd-session, privsep and shell
#             processes; "bulk" subtracts the server's median CPU for a connect + 'true' + exit.
#   channels  (issue 16) SIZE downloaded as 4 x SIZE/4: 4 channels on one connection (Rust API,
#             examples/channels.rs, one reader thread each) vs 4 parallel ssh processes (forced
#             to sshbridge's cipher when the full run knows it, else ssh's default), each
#             `head -c SIZE/4 /dev/zero`; wall (incl. connect) and CPU (user+sys of the whole
#             process tree, wait4) per run, REPS interleaved runs; plus 1 channel and the RSS
#             of 32 idle channels (issue 9).
# Clients: sshbridge (examples/sshexec.c over the drop-in C API), sshbridge (aws-lc) (the same
# program linked against the --features aws-lc build, bench/target-awslc), ssh (default cipher),
# ssh -c aes128-gcm@openssh.com, dbclient -W 2097152, libssh2 (bench/libssh2_exec.c); plus
# ssh forced to sshbridge's cipher if that is neither of the two ssh variants; and OpenSSH 10.0's
# ssh (/opt/openssh-10, default settings) when installed. The algorithms
# each client negotiated are read from the sshd log. Client CPU and wall come from wait4()
# (bench/timeit.c). "Bulk" CPU subtracts the client's median connect+exit CPU, so connection
# set-up (e.g. ssh's sntrup761) is not charged per GiB; the CPU/GiB targets use it. Prints
# medians, ratios and PASS/FAIL against the targets of issues 5 and 16; exits 0 even when a target
# FAILs (non-zero only if the benchmark itself could not run).
#
# The negotiated cipher is taken from the sshd log at LogLevel DEBUG: VERBOSE does not log
# the "kex: client->server cipher: ..." lines. Nothing is logged per packet at DEBUG(1).
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/../bench/lib.sh"

REPS=5
SIZE_MIB=1024
HS_ONLY=0
SRV_ONLY=0
CH_ONLY=0
while (($#)); do
    case $1 in
    --quick) REPS=2 SIZE_MIB=256 ;;
    --reps) REPS=$2; shift ;;
    --size-mib) SIZE_MIB=$2; shift ;;
    --handshake-only) HS_ONLY=1 ;;
    --server-only) SRV_ONLY=1 ;;
    --channels-only) CH_ONLY=1 ;;
    -h | --help) sed -n '2,40p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) bdie "unknown argument $1 (try --help)" ;;
    esac
    shift
done
SIZE=$((SIZE_MIB * 1024 * 1024))
CREPS=$((REPS * 6)) # connects are short: more samples
NSESS=100
# Per run: 30 s plus 1 s per 32 MiB (1 GiB: 62 s, 13 times the slowest client's 4.7 s here).
# libssh2 1.10.0 sometimes stops mid-download for good (three of five downloads in one run);
# each such run costs the whole timeout. A run that times out is reported and left out of the
# medians.
TIMEOUT=$((30 + SIZE_MIB / 32))
T0=$(date +%s)

trap bench_cleanup EXIT
trap 'exit 130' INT TERM HUP

bench_init
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------
((SRV_ONLY || CH_ONLY)) || bench_build_lib
if ((!HS_ONLY && !SRV_ONLY && !CH_ONLY)); then
    blog "${BENCH_CARGO_C[*]} --no-default-features (CARGO_TARGET_DIR=bench/target-modern)"
    (cd "$BENCH_ROOT" && CARGO_TARGET_DIR=$BENCH_ROOT/bench/target-modern \
        "${BENCH_CARGO_C[@]}" --no-default-features) >&2 || bdie "modern-only build failed"
    blog "${BENCH_CARGO_C[*]} --features aws-lc (CARGO_TARGET_DIR=bench/target-awslc)"
    (cd "$BENCH_ROOT" && CARGO_TARGET_DIR=$BENCH_ROOT/bench/target-awslc \
        "${BENCH_CARGO_C[@]}" --features aws-lc) >&2 || bdie "aws-lc build failed"
    mkdir -p "$BT/so"
    cp "$BENCH_ROOT/bench/target-awslc/release/libsshbridge.so" "$BT/so/awslc.so"
    strip -o "$BT/so/awslc.stripped.so" "$BT/so/awslc.so"
    cp "$BENCH_ROOT/target/release/libsshbridge.so" "$BT/so/all.so"
    cp "$BENCH_ROOT/bench/target-modern/release/libsshbridge.so" "$BT/so/modern.so"
    strip -o "$BT/so/all.stripped.so" "$BT/so/all.so"
    strip -o "$BT/so/modern.stripped.so" "$BT/so/modern.so"
    # The floor under the modern build's size (bench/sizefloor: std and the same crypto crates,
    # no SSH code), with the crypto and without (std alone).
    blog "cargo rustc --release --lib --crate-type cdylib in bench/sizefloor (CARGO_TARGET_DIR=bench/target-floor)"
    for v in crypto std; do
        flags=()
        [[ $v == std ]] && flags=(--no-default-features)
        # (its warnings, about the main crate's profile entries it has no package for, go to a log)
        (cd "$BENCH_ROOT/bench/sizefloor" && CARGO_TARGET_DIR=$BENCH_ROOT/bench/target-floor \
            cargo rustc --release --lib --crate-type cdylib --quiet "${flags[@]}") 2>"$BT/sizefloor.log" || {
            cat "$BT/sizefloor.log" >&2
            bdie "bench/sizefloor ($v) failed to build"
        }
        strip -o "$BT/so/floor-$v.stripped.so" "$BENCH_ROOT/bench/target-floor/release/libsizefloor.so"
    done
fi
BIN=$BT/bin
if ((SRV_ONLY || CH_ONLY)); then # timeit is all the C these need
    mkdir -p "$BIN"
    gcc -O2 -Wall -Wextra -o "$BIN/timeit" "$BENCH_ROOT/bench/timeit.c" || bdie "cannot build timeit"
else
    blog "building sshexec, libssh2_exec, rss_sessions, timeit"
    bench_build_c "$BIN"
fi
if ((!HS_ONLY && !SRV_ONLY && !CH_ONLY)); then
    gcc -O2 -g -Wall -Wextra -I"$BENCH_ROOT/include" -o "$BIN/sshexec-awslc" "$BENCH_ROOT/examples/sshexec.c" \
        "$BENCH_ROOT/bench/target-awslc/release/libsshbridge.a" "${BENCH_NATIVE_LIBS[@]}" ||
        bdie "cannot build sshexec against the aws-lc build"
fi
if ((!HS_ONLY && !SRV_ONLY)); then
    blog "cargo build --release --example channels"
    (cd "$BENCH_ROOT" && cargo build -q --release --example channels) >&2 || bdie "examples/channels failed to build"
fi

bench_keys
bench_sshd
R=$BT/results
mkdir -p "$R"
ERRLOG=$BT/client-stderr.log
FAILURES=()

# logfield REGEX-WITH-ONE-GROUP < lines: the group of the first matching line ("" if none).
logfield() { tr -d '\r' | sed -n "s/.*$1/\\1/p" | awk 'NR == 1'; }
# median TEST CLIENT FIELD (1 wall, 2 user, 3 sys, 4 maxrss, 6 = user+sys); "nan" if no run.
median() {
    local f runs=()
    for f in "$R/$1.$2".*; do [[ -f $f && $f != *.failed ]] && runs+=("$f"); done
    ((${#runs[@]})) || { echo nan; return; }
    cat "${runs[@]}" | awk -v k="$3" '{ print (k == 6 ? $2 + $3 : $k) }' | sort -g |
        awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
# "nan" in (a median of no successful run) gives nan, not awk's 0 for an unknown name.
calc() { [[ $1 == *nan* ]] && { echo nan; return; }; awk "BEGIN { v = $1; printf \"$2\", v }" 2>/dev/null || echo nan; }
label() {
    case $1 in
    sshbridge) echo "sshbridge (sshexec)" ;;
    sshbridge-awslc) echo "sshbridge (aws-lc)" ;;
    sshbridge-rust) echo "sshbridge (Rust API)" ;;
    ssh) echo "ssh (default)" ;;
    ssh-gcm) echo "ssh -c aes128-gcm" ;;
    ssh-same) echo "ssh ${SSH_SAME_OPTS[*]}" ;;
    dbclient) echo "dbclient -W 2097152" ;;
    libssh2) echo "libssh2 $(dpkg-query -W -f='${Version}' libssh2-1 2>/dev/null | cut -d- -f1)" ;;
    ssh10) echo "ssh 10.0 (default)" ;;
    ssh10-x25519) echo "ssh 10.0 -o KexAlgorithms=curve25519" ;;
    esac
}
# ---------------------------------------------------------------------------------------
# Handshake cost with post-quantum key exchange, against OpenSSH 10.0's sshd
# ---------------------------------------------------------------------------------------
HS_CLIENTS=(sshbridge ssh10 ssh10-x25519)
declare -A HSKEX

# run_hs TEST CLIENT REP: one timed connect + `true` + exit against sshd 10.0.
run_hs() {
    local res="$R/$1.$2.$3" st
    CLIENT_PORT=$SSHD10_PORT client_cmd "$2" "true"
    "$BIN/timeit" -t 60 -o "$res" -- "${CLIENT[@]}" </dev/null >/dev/null 2>>"$ERRLOG" || true
    st=$(awk '{print $5}' "$res" 2>/dev/null || echo 255)
    if [[ $st != 0 ]]; then
        FAILURES+=("$1/$2/rep$3: exit status $st")
        mv "$res" "$res.failed" 2>/dev/null || true
    fi
}

handshake_run() {
    bench_sshd10
    local c rep i n=${#HS_CLIENTS[@]} before
    for c in "${HS_CLIENTS[@]}"; do
        before=$(wc -l <"$SSHD10_LOG")
        run_hs hsprobe "$c" 0
        sleep 0.3
        HSKEX[$c]=$(tail -n +"$((before + 1))" "$SSHD10_LOG" | logfield 'kex: algorithm: \([^ ]*\).*')
        [[ -n ${HSKEX[$c]} ]] || bdie "$c: no kex in $SSHD10_LOG"
    done
    blog "handshake against OpenSSH 10.0: $CREPS x $n clients"
    for ((rep = 1; rep <= CREPS; rep++)); do
        for ((i = 0; i < n; i++)); do run_hs hs "${HS_CLIENTS[$(((i + rep) % n))]}" "$rep"; done
    done
}

handshake_report() {
    local c
    echo "Handshake against OpenSSH 10.0 sshd ($("$SSHD10_BIN" -V 2>&1 | head -1 | cut -d, -f1)): connect + auth + 'true' + exit, medians of $CREPS:"
    printf '  %-38s %-24s %9s %9s\n' client kex "wall ms" "CPU ms"
    for c in "${HS_CLIENTS[@]}"; do
        printf '  %-38s %-24s %9s %9s\n' "$(label "$c")" "${HSKEX[$c]}" \
            "$(calc "$(median hs "$c" 1) * 1000" %.1f)" "$(calc "$(median hs "$c" 6) * 1000" %.1f)"
    done
    echo "  => client CPU with ML-KEM: sshbridge / ssh 10.0 = $(calc "$(median hs sshbridge 6) / $(median hs ssh10 6)" %.2fx);" \
        "ML-KEM's extra CPU in ssh 10.0 = $(calc "($(median hs ssh10 6) - $(median hs ssh10-x25519 6)) * 1000" %.1f) ms"
    echo
}

# ---------------------------------------------------------------------------------------
# Server: ssh downloading from examples/serve vs from sshd (issue 11)
# ---------------------------------------------------------------------------------------
SRV_SERVERS=(serve sshd)
SRV_CREPS=$((REPS * 3))
declare -A SRV_CIPHER SRV_CG
# Server CPU is counted by a cpuacct cgroup per server (cgroup v1 at /sys/fs/cgroup/cpuacct, or
# v2 with the cpu controller), which every process the server ever forks stays in: sshd's
# privsep monitor exits without reaping its post-auth child, so the cutime/cstime of
# /proc/PID/stat miss most of sshd's session CPU (measured: 0.03 s for 256 MiB). Without a
# usable cgroup, that /proc fallback is used and the report says so.
srv_cg_setup() { # SERVER PID
    local d
    if [[ -w /sys/fs/cgroup/cpuacct/cgroup.procs ]]; then
        d=/sys/fs/cgroup/cpuacct/sshb-bench-$$-$1
    elif [[ -f /sys/fs/cgroup/cgroup.controllers ]] && grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; then
        d=/sys/fs/cgroup/sshb-bench-$$-$1
    else
        return 0
    fi
    mkdir -p "$d" 2>/dev/null && echo "$2" >"$d/cgroup.procs" 2>/dev/null || { rmdir "$d" 2>/dev/null; return 0; }
    BENCH_CGROUPS+=("$d")
    SRV_CG[$1]=$d
}
# srv_cpu SERVER: CPU seconds of the server and every process it forked (see above).
srv_cpu() {
    local d=${SRV_CG[$1]:-}
    if [[ -n $d && -f $d/cpuacct.usage ]]; then
        awk '{ printf "%.3f", $1 / 1e9 }' "$d/cpuacct.usage"
    elif [[ -n $d && -f $d/cpu.stat ]]; then
        awk '$1 == "usage_usec" { printf "%.3f", $2 / 1e6 }' "$d/cpu.stat"
    else # utime+stime+cutime+cstime: only the descendants that were reaped
        awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15 + $16 + $17) / hz }' "/proc/$(srv_pid "$1")/stat"
    fi
}
srv_pid() { if [[ $1 == serve ]]; then echo "$SERVE_PID"; else echo "$SSHD_PID"; fi; }
srv_port() { if [[ $1 == serve ]]; then echo "$SERVE_PORT"; else echo "$SSHD_PORT"; fi; }
# Wait (at most 10 s) until the server has no session processes left, so their CPU is reaped.
srv_quiet() {
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -z $(ps -o pid= --ppid "$1" 2>/dev/null) ]] && return 0
        sleep 0.1
    done
    blog "WARNING: server $1 still has children: $(ps -o pid=,comm= --ppid "$1" | tr '\n' ' ')"
}

serve_start() {
    blog "cargo build --release --features server --example serve"
    (cd "$BENCH_ROOT" && cargo build -q --release --features server --example serve) >&2 || bdie "examples/serve failed to build"
    cp "$BT/id_ed25519.pub" "$BT/serve_authorized_keys"
    # Same host key as sshd, so the clients' known_hosts line only differs in the port.
    "$BENCH_ROOT/target/release/examples/serve" --listen 127.0.0.1:0 --host-key "$BT/host_ed25519" \
        --authorized-keys "$BT/serve_authorized_keys" >"$BT/serve.out" 2>"$BT/serve.err" &
    SERVE_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        SERVE_PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$BT/serve.out" 2>/dev/null)
        [[ -n $SERVE_PORT ]] && break
        kill -0 "$SERVE_PID" 2>/dev/null || bdie "serve exited: $(cat "$BT/serve.err")"
        sleep 0.1
    done
    [[ -n $SERVE_PORT ]] || bdie "serve did not print its address"
    printf '[127.0.0.1]:%s %s\n' "$SERVE_PORT" "$HOSTKEY_PUB" >>"$BT/known_hosts"
    blog "serve (pid $SERVE_PID) listening on 127.0.0.1:$SERVE_PORT"
}

# run_srv TEST SERVER REP REMOTE_CMD: one ssh run; $R/TEST.SERVER.REP gets timeit's line,
# $R/TEST-cpu.SERVER.REP the server's CPU for it.
run_srv() {
    local test=$1 s=$2 rep=$3 cmd=$4 pid res c0 c1 st
    pid=$(srv_pid "$s")
    res="$R/$test.$s.$rep"
    srv_quiet "$pid"
    c0=$(srv_cpu "$s")
    CLIENT_PORT=$(srv_port "$s") client_cmd ssh "$cmd"
    "$BIN/timeit" -t "$TIMEOUT" -o "$res" -- "${CLIENT[@]}" </dev/null >/dev/null 2>>"$ERRLOG" || true
    srv_quiet "$pid"
    c1=$(srv_cpu "$s")
    st=$(awk '{print $5}' "$res" 2>/dev/null || echo 255)
    if [[ $st != 0 ]]; then
        FAILURES+=("$test/$s/rep$rep: exit status $st")
        blog "WARNING: $test from $s (rep $rep) exited with status $st"
        mv "$res" "$res.failed" 2>/dev/null || true
        return
    fi
    echo "$(calc "$c1 - $c0" %.3f)" >"$R/$test-cpu.$s.$rep"
}

server_run() {
    serve_start
    local s out i rep n=${#SRV_SERVERS[@]}
    for s in "${SRV_SERVERS[@]}"; do srv_cg_setup "$s" "$(srv_pid "$s")"; done
    for s in "${SRV_SERVERS[@]}"; do
        CLIENT_PORT=$(srv_port "$s") client_cmd ssh "head -c 3000000 /dev/zero"
        out=$("${CLIENT[@]}" </dev/null 2>>"$ERRLOG" | wc -c) || true
        [[ $out == 3000000 ]] || bdie "server $s: download of 3000000 bytes gave $out"
        # the cipher ssh negotiated, from its own debug output
        SRV_CIPHER[$s]=$(ssh -v "${CLIENT[@]:1:${#CLIENT[@]}-2}" true </dev/null 2>&1 |
            logfield 'kex: server->client cipher: \([^ ]*\).*')
    done
    blog "server: $REPS x ${SIZE_MIB} MiB downloads and $SRV_CREPS connects from each of ${SRV_SERVERS[*]}"
    for ((rep = 1; rep <= REPS; rep++)); do
        for ((i = 0; i < n; i++)); do run_srv srvdown "${SRV_SERVERS[$(((i + rep) % n))]}" "$rep" "head -c $SIZE /dev/zero"; done
    done
    for ((rep = 1; rep <= SRV_CREPS; rep++)); do
        for ((i = 0; i < n; i++)); do run_srv srvconn "${SRV_SERVERS[$(((i + rep) % n))]}" "$rep" true; done
    done
}

server_report() {
    local s w c cc sc
    local gib
    gib=$(calc "1073741824 / $SIZE" "%.6f")
    declare -A SW SC SB
    echo "Server (issue 11): /usr/bin/ssh downloads $SIZE_MIB MiB ('head -c $SIZE /dev/zero' > /dev/null)"
    echo "  from examples/serve (sshbridge) and from $(/usr/sbin/sshd -V 2>&1 | head -1 | cut -d, -f1); medians of $REPS (connect: of $SRV_CREPS);"
    if [[ -n ${SRV_CG[serve]:-} && -n ${SRV_CG[sshd]:-} ]]; then
        echo "  server CPU = all CPU of the server and every process it forked (one cpuacct cgroup per server):"
    else
        echo "  server CPU = utime+stime+cutime+cstime of the server process (NO cgroup: unreaped descendants, e.g. sshd's sessions, are missed):"
    fi
    printf '  %-28s %-30s %8s %8s %11s %13s %15s %14s
' server "cipher (ssh's choice)" "wall s" "MiB/s" "srv CPU s" "srv CPU s/GiB" "bulk CPU s/GiB" "conn CPU ms"
    for s in "${SRV_SERVERS[@]}"; do
        w=$(median srvdown "$s" 1)
        c=$(median srvdown-cpu "$s" 1)
        cc=$(median srvconn-cpu "$s" 1)
        SW[$s]=$w SC[$s]=$c SB[$s]=$(calc "($c - $cc) * $gib" %.6f)
        printf '  %-28s %-30s %8s %8s %11s %13s %15s %14s
' \
            "$([[ $s == serve ]] && echo "sshbridge examples/serve" || echo "OpenSSH sshd")" "${SRV_CIPHER[$s]}" \
            "$(calc "$w" %.2f)" "$(calc "$SIZE_MIB / $w" %.0f)" "$(calc "$c" %.2f)" "$(calc "$c * $gib" %.2f)" \
            "$(calc "${SB[$s]}" %.2f)" "$(calc "$cc * 1000" %.1f)"
    done
    echo "  => serve / sshd: throughput $(calc "${SW[sshd]} / ${SW[serve]}" %.2fx) (>1 = serve faster)," \
        "server CPU/GiB $(calc "${SC[serve]} / ${SC[sshd]}" %.2fx), bulk $(calc "${SB[serve]} / ${SB[sshd]}" %.2fx)," \
        "connect CPU $(calc "$(median srvconn-cpu serve 1) / $(median srvconn-cpu sshd 1)" %.2fx) (<1 = serve cheaper)"
    echo
}

# ---------------------------------------------------------------------------------------
# Channels (issues 9 and 16): 4 channels on one connection vs 4 ssh processes
# ---------------------------------------------------------------------------------------
# The Rust API (examples/channels.rs) downloads SIZE/4 on each of 4 channels of one connection;
# the same 4 downloads by 4 parallel ssh processes. Both under timeit, so wall includes the
# connects and CPU is user+sys of the whole process tree. Then 1 channel alone and RSS of idle
# channels.
CH_MIB=$((SIZE_MIB / 4))
CH_SSH=ssh # the full run switches this to $SAME (ssh forced to sshbridge's cipher)
ch_args() { CH_ARGS=(-p "$SSHD_PORT" -l "$BENCH_USER" -i "$BT/id_ed25519" -k "$HOSTKEY_PUB" 127.0.0.1); }

# run_ch WHO REP: one timed run of 4 x CH_MIB MiB.
run_ch() {
    local who=$1 rep=$2 res="$R/ch4.$1.$2" st
    ch_args
    if [[ $who == channels ]]; then
        "$BIN/timeit" -t "$TIMEOUT" -o "$res" -- "$BENCH_ROOT/target/release/examples/channels" "${CH_ARGS[@]}" \
            throughput 4 "$CH_MIB" >"$R/ch4out.$rep" 2>>"$ERRLOG" || true
    else
        client_cmd "$CH_SSH" "head -c $((CH_MIB * 1048576)) /dev/zero"
        # shellcheck disable=SC2016
        "$BIN/timeit" -t "$TIMEOUT" -o "$res" -- bash -c \
            'p=(); for i in 1 2 3 4; do "$@" </dev/null >/dev/null & p+=($!); done
             s=0; for x in "${p[@]}"; do wait "$x" || s=1; done; exit $s' ch4 "${CLIENT[@]}" \
            </dev/null 2>>"$ERRLOG" || true
    fi
    st=$(awk '{print $5}' "$res" 2>/dev/null || echo 255)
    if [[ $st != 0 ]]; then
        FAILURES+=("ch4/$who/rep$rep: exit status $st")
        mv "$res" "$res.failed" 2>/dev/null || true
    fi
}

channels_run() {
    local rep
    blog "channels: $REPS x (4 channels vs 4 $CH_SSH processes) of $CH_MIB MiB each, then 1 channel and 32 idle channels"
    for ((rep = 1; rep <= REPS; rep++)); do
        if ((rep % 2)); then run_ch channels "$rep"; run_ch ssh4 "$rep"
        else run_ch ssh4 "$rep"; run_ch channels "$rep"; fi
    done
    ch_args
    CH1=$("$BENCH_ROOT/target/release/examples/channels" "${CH_ARGS[@]}" throughput 1 "$CH_MIB" 2>>"$ERRLOG" || echo failed)
    CH4=$(cat "$R/ch4out.1" 2>/dev/null || echo failed)
    CHIDLE=$("$BENCH_ROOT/target/release/examples/channels" "${CH_ARGS[@]}" idle 32 2>>"$ERRLOG" || echo failed)
}

channels_report() {
    local who w c
    echo "Channels: $((CH_MIB * 4)) MiB as 4 downloads of $CH_MIB MiB ('head -c' > /dev/null), medians of $REPS:"
    printf '  %-44s %9s %14s %9s %11s\n' "" "wall s" "aggregate MiB/s" "CPU s" "CPU s/GiB"
    for who in channels ssh4; do
        w=$(median ch4 "$who" 1) c=$(median ch4 "$who" 6)
        printf '  %-44s %9s %14s %9s %11s\n' \
            "$([[ $who == channels ]] && echo "sshbridge: 4 channels, 1 connection" || echo "4 x $(label "$CH_SSH") processes")" \
            "$(calc "$w" %.2f)" "$(calc "$CH_MIB * 4 / $w" %.0f)" "$(calc "$c" %.2f)" \
            "$(calc "$c * 1024 / ($CH_MIB * 4)" %.2f)"
    done
    echo "  => 4 channels / 4 processes: throughput $(calc "$(median ch4 ssh4 1) / $(median ch4 channels 1)" %.2fx)" \
        "(>1 = channels faster), CPU $(calc "$(median ch4 channels 6) / $(median ch4 ssh4 6)" %.2fx) (<1 = channels cheaper)"
    echo "  (wall and CPU include the connects: one for the channels, four for the processes)"
    echo "Channels on one connection (sshbridge Rust API, download of $CH_MIB MiB per channel; time after connect):"
    echo "  1 channel:   $CH1"
    echo "  4 channels:  $CH4"
    R1=$(sed -n 's/.*aggregate_mib_s=\([0-9.]*\).*/\1/p' <<<"$CH1")
    R4=$(sed -n 's/.*aggregate_mib_s=\([0-9.]*\).*/\1/p' <<<"$CH4")
    echo "  => 4 channels move $(calc "${R4:-nan} / ${R1:-nan}" %.2fx) the aggregate of 1"
    echo "  idle:        $CHIDLE"
    echo
}

if ((CH_ONLY)); then
    channels_run
    echo
    channels_report
    if ((${#FAILURES[@]})); then printf 'failed runs: %s\n' "${FAILURES[@]}"; tail -5 "$ERRLOG"; fi
    exit 0
fi

if ((SRV_ONLY)); then
    server_run
    echo
    server_report
    if ((${#FAILURES[@]})); then printf 'failed runs: %s\n' "${FAILURES[@]}"; tail -5 "$ERRLOG"; fi
    exit 0
fi

if ((HS_ONLY)); then
    handshake_run
    echo
    handshake_report
    if ((${#FAILURES[@]})); then printf 'failed runs: %s\n' "${FAILURES[@]}"; fi
    exit 0
fi

# ---------------------------------------------------------------------------------------
# Probe: each client works, moves bytes exactly, reports exit codes; what it negotiates
# ---------------------------------------------------------------------------------------
declare -A KEX CIPHER_CS CIPHER_SC MAC_SC SOFTWARE
CLIENTS=(sshbridge sshbridge-awslc sshbridge-rust ssh ssh-gcm dbclient libssh2)
# OpenSSH 10.0's ssh (issue 16), default settings, against the same sshd.
[[ -x $SSH10_BIN ]] && CLIENTS+=(ssh10)
head -c 1048576 /dev/urandom >"$BT/probe.bin"

# Each probe run gets PROBE_TIMEOUT s: dbclient 2022.83 once stayed in poll() after its download
# had arrived and the connection had closed, and the benchmark waited for it without end.
PROBE_TIMEOUT=60
probe() {
    local c=$1 before out lines st
    before=$(wc -l <"$SSHD_LOG")
    client_cmd "$c" "echo ok"
    out=$(timeout "$PROBE_TIMEOUT" "${CLIENT[@]}" </dev/null 2>>"$ERRLOG") ||
        bdie "$c: 'echo ok' failed (see below)$(tail -3 "$ERRLOG")"
    [[ $out == ok ]] || bdie "$c: 'echo ok' printed '$out'"
    client_cmd "$c" "head -c 3000000 /dev/zero"
    out=$(timeout "$PROBE_TIMEOUT" "${CLIENT[@]}" </dev/null 2>>"$ERRLOG" | wc -c; exit "${PIPESTATUS[0]}") && st=0 || st=$?
    [[ $out == 3000000 ]] || bdie "$c: download of 3000000 bytes gave $out"
    if [[ $st == 124 ]]; then
        FAILURES+=("probe: $c received its 3000000 bytes but did not exit (killed after $PROBE_TIMEOUT s)")
        blog "WARNING: $c received its probe download but did not exit"
    fi
    client_cmd "$c" "sha256sum"
    out=$(timeout "$PROBE_TIMEOUT" "${CLIENT[@]}" <"$BT/probe.bin" 2>>"$ERRLOG" | cut -d' ' -f1) || true
    [[ $out == $(sha256sum <"$BT/probe.bin" | cut -d' ' -f1) ]] || bdie "$c: upload of 1 MiB corrupted"
    client_cmd "$c" "exit 7"
    st=0
    timeout "$PROBE_TIMEOUT" "${CLIENT[@]}" </dev/null 2>>"$ERRLOG" || st=$?
    [[ $st == 7 ]] || bdie "$c: remote 'exit 7' gave exit status $st"
    sleep 0.3
    lines=$(tail -n +"$((before + 1))" "$SSHD_LOG")
    # The first connection of the four is the one to read (all four negotiate the same).
    KEX[$c]=$(logfield 'kex: algorithm: \([^ ]*\).*' <<<"$lines")
    CIPHER_CS[$c]=$(logfield 'kex: client->server cipher: \([^ ]*\).*' <<<"$lines")
    CIPHER_SC[$c]=$(logfield 'kex: server->client cipher: \([^ ]*\).*' <<<"$lines")
    MAC_SC[$c]=$(logfield 'kex: server->client cipher: [^ ]* MAC: \([^ ]*\).*' <<<"$lines")
    SOFTWARE[$c]=$(logfield 'remote software version \([^ ]*\).*' <<<"$lines")
    [[ -n ${CIPHER_SC[$c]} ]] || bdie "$c: negotiated cipher not found in $SSHD_LOG"
}


blog "probing clients (correctness, negotiated algorithms)"
for c in "${CLIENTS[@]}"; do probe "$c"; done
SB_CIPHER=${CIPHER_SC[sshbridge]}
SB_MAC=${MAC_SC[sshbridge]}
# The ssh run that uses sshbridge's cipher (and MAC, for non-AEAD ciphers).
SAME=""
for c in ssh ssh-gcm; do
    if [[ ${CIPHER_SC[$c]} == "$SB_CIPHER" && ${MAC_SC[$c]} == "$SB_MAC" ]]; then SAME=$c; break; fi
done
if [[ -z $SAME ]]; then
    SAME=ssh-same
    SSH_SAME_OPTS=(-c "$SB_CIPHER")
    [[ $SB_MAC == "<implicit>" ]] || SSH_SAME_OPTS+=(-m "$SB_MAC")
    CLIENTS+=("$SAME")
    probe "$SAME"
fi
blog "sshbridge negotiated ${CIPHER_SC[sshbridge]} / ${MAC_SC[sshbridge]}; same-cipher ssh run: $SAME"

# ---------------------------------------------------------------------------------------
# Timed runs
# ---------------------------------------------------------------------------------------
# run_timed TEST CLIENT REP REMOTE_CMD STDIN
run_timed() {
    local test=$1 c=$2 rep=$3 cmd=$4 in=$5 res st
    res="$R/$test.$c.$rep"
    client_cmd "$c" "$cmd"
    "$BIN/timeit" -t "$TIMEOUT" -o "$res" -- "${CLIENT[@]}" <"$in" >/dev/null 2>>"$ERRLOG" || true
    st=$(awk '{print $5}' "$res" 2>/dev/null || echo 255)
    if [[ $st != 0 ]]; then
        FAILURES+=("$test/$c/rep$rep: exit status $st")
        blog "WARNING: $test with $c (rep $rep) exited with status $st"
        mv "$res" "$res.failed" 2>/dev/null || true
    fi
}

# Round-robin over the clients, starting one further each repetition.
rotated() {
    local rep=$1 n=${#CLIENTS[@]} i
    for ((i = 0; i < n; i++)); do echo "${CLIENTS[$(((i + rep) % n))]}"; done
}

# Sparse: reads cost no disk I/O. But the first read of a hole makes the kernel zero every page
# it puts in the page cache (ext4_mpage_readpages -> memset: 0.6 s of system CPU per 256 MiB
# here, perf record), and the cache may be dropped between runs: whichever client read the file
# first was charged for it (issue 16's upload CPU figures were off by up to 2x). So the file is
# read once by `cat` right before every upload, and each client reads it from the page cache.
truncate -s "$SIZE" "$BT/upload.bin"
blog "transfers: $REPS x ${#CLIENTS[@]} clients x (down + up) of $SIZE_MIB MiB"
for ((rep = 1; rep <= REPS; rep++)); do
    while read -r c; do
        run_timed down "$c" "$rep" "head -c $SIZE /dev/zero" /dev/null
    done < <(rotated "$rep")
    while read -r c; do
        cat "$BT/upload.bin" >/dev/null
        run_timed up "$c" "$rep" "cat > /dev/null" "$BT/upload.bin"
    done < <(rotated "$rep")
    blog "  repetition $rep/$REPS done ($(($(date +%s) - T0)) s so far)"
done

# The floor under sshexec's CPU (bench/hop.c, no SSH): receiving over loopback TCP alone, and
# that plus the C API's socketpair to the application thread; sending the same two ways.
blog "floor: $REPS x bench/hop (tcp, tcp-pair, send, pair-send) of $SIZE_MIB MiB"
for ((rep = 1; rep <= REPS; rep++)); do
    for mode in tcp tcp-pair send pair-send; do
        "$BIN/hop" "$mode" "$SIZE_MIB" >"$R/hop.$mode.$rep" 2>>"$ERRLOG" || {
            FAILURES+=("hop $mode rep $rep failed")
            mv "$R/hop.$mode.$rep" "$R/hop.$mode.$rep.failed" 2>/dev/null || true
        }
    done
done

blog "connect + auth + true + exit: $CREPS x ${#CLIENTS[@]} clients"
for ((rep = 1; rep <= CREPS; rep++)); do
    while read -r c; do
        run_timed connect "$c" "$rep" "true" /dev/null
    done < <(rotated "$rep")
done

handshake_run
server_run
CH_SSH=$SAME
channels_run

blog "memory: $NSESS idle sessions in one process"
RSS_LINE=$("$BIN/rss_sessions" -p "$SSHD_PORT" -l "$BENCH_USER" -i "$BT/id_ed25519" -k "$HOSTKEY_PUB" \
    -n "$NSESS" 127.0.0.1 2>>"$ERRLOG") || {
    FAILURES+=("rss_sessions failed: $(tail -1 "$ERRLOG")")
    RSS_LINE=""
}
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------
GIB=$(calc "1073741824 / $SIZE" "%.6f") # per-GiB scale
declare -A DW DC UW UC CW CC CR
for c in "${CLIENTS[@]}"; do
    DW[$c]=$(median down "$c" 1)
    DC[$c]=$(median down "$c" 6)
    UW[$c]=$(median up "$c" 1)
    UC[$c]=$(median up "$c" 6)
    CW[$c]=$(median connect "$c" 1)
    CC[$c]=$(median connect "$c" 6)
    CR[$c]=$(median connect "$c" 4)
done

echo
echo "=== sshbridge benchmark — $(date -u '+%Y-%m-%d %H:%M UTC'), git $(git -C "$BENCH_ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$BENCH_ROOT" diff --quiet -- src Cargo.toml 2>/dev/null || echo '+dirty src') ==="
echo "$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')); load average at start $LOAD_START, at end $LOAD_END"
echo "server: $(/usr/sbin/sshd -V 2>&1 | head -1 | cut -d, -f1) on 127.0.0.1:$SSHD_PORT; medians of $REPS transfers of $SIZE_MIB MiB and of $CREPS connects"
echo
echo "Negotiated algorithms (sshd log, LogLevel DEBUG):"
printf '  %-22s %-34s %-28s %-30s %s\n' client "client software" kex "cipher s->c (c->s)" "MAC"
for c in "${CLIENTS[@]}"; do
    cs=""
    [[ ${CIPHER_CS[$c]} == "${CIPHER_SC[$c]}" ]] || cs=" (${CIPHER_CS[$c]})"
    printf '  %-22s %-34s %-28s %-30s %s\n' "$(label "$c")" "${SOFTWARE[$c]}" "${KEX[$c]}" \
        "${CIPHER_SC[$c]}$cs" "${MAC_SC[$c]}"
done
echo
# Bulk CPU: the transfer's CPU minus the same client's median connect+auth+exit CPU (ssh's
# sntrup761 key exchange alone costs it 0.1-0.2 s, which would otherwise be charged per GiB
# and shrink with the transfer size). The CPU targets use it; throughput uses plain wall time
# (subtracting connect wall times is too noisy: they are mostly the server's fork and exec).
declare -A NDC NUC
for c in "${CLIENTS[@]}"; do
    NDC[$c]=$(calc "${DC[$c]} - ${CC[$c]}" %.6f)
    NUC[$c]=$(calc "${UC[$c]} - ${CC[$c]}" %.6f)
done
HOP_TCP=$(calc "$(median hop tcp 6) * $GIB" %.6f)
HOP_PAIR=$(calc "$(median hop tcp-pair 6) * $GIB" %.6f)
HOP_SEND=$(calc "$(median hop send 6) * $GIB" %.6f)
HOP_PSEND=$(calc "$(median hop pair-send 6) * $GIB" %.6f)
for dir in Download Upload; do
    echo "$dir of $SIZE_MIB MiB (wall incl. connect; CPU = client user+sys; bulk = minus connect+exit CPU):"
    printf '  %-22s %9s %9s %11s %11s %14s\n' client "wall s" "MiB/s" "CPU s" "CPU s/GiB" "bulk CPU s/GiB"
    for c in "${CLIENTS[@]}"; do
        if [[ $dir == Download ]]; then w=${DW[$c]} u=${DC[$c]} nu=${NDC[$c]}
        else w=${UW[$c]} u=${UC[$c]} nu=${NUC[$c]}; fi
        printf '  %-22s %9s %9s %11s %11s %14s\n' "$(label "$c")" "$(calc "$w" %.2f)" \
            "$(calc "$SIZE_MIB / $w" %.0f)" "$(calc "$u" %.2f)" "$(calc "$u * $GIB" %.2f)" "$(calc "$nu * $GIB" %.2f)"
    done
    if [[ $dir == Download ]]; then
        echo "  floor without SSH (bench/hop.c, medians of $REPS x $SIZE_MIB MiB, CPU s/GiB):"
        printf '  %-62s %14s\n' "    receive over loopback TCP only (what every client pays)" "$(calc "$HOP_TCP" %.2f)"
        printf '  %-62s %14s\n' "    + the C API's socketpair to the application's thread" "$(calc "$HOP_PAIR" %.2f)"
    else
        echo "  floor without SSH (bench/hop.c, medians of $REPS x $SIZE_MIB MiB, CPU s/GiB):"
        printf '  %-62s %14s\n' "    send over loopback TCP only (what every client pays)" "$(calc "$HOP_SEND" %.2f)"
        printf '  %-62s %14s\n' "    + the C API's socketpair from the application's thread" "$(calc "$HOP_PSEND" %.2f)"
    fi
    echo
done
echo "Connect + authenticate (ed25519) + run 'true' + exit:"
printf '  %-22s %9s %9s %13s\n' client "wall ms" "CPU ms" "max RSS KiB"
for c in "${CLIENTS[@]}"; do
    printf '  %-22s %9s %9s %13s\n' "$(label "$c")" "$(calc "${CW[$c]} * 1000" %.1f)" \
        "$(calc "${CC[$c]} * 1000" %.1f)" "$(calc "${CR[$c]}" %.0f)"
done
echo
handshake_report
server_report
PER_SESS=nan
if [[ -n $RSS_LINE ]]; then
    PER_SESS=$(sed 's/.*per_session_kib=\([^ ]*\).*/\1/' <<<"$RSS_LINE")
    echo "Memory, $NSESS idle sessions (remote 'cat') in one process after one warm-up session:"
    echo "  $RSS_LINE"
    echo "  => $PER_SESS KiB RSS per additional idle session"
    echo
fi
SZ_ALL=$(stat -c %s "$BT/so/all.stripped.so")
SZ_MOD=$(stat -c %s "$BT/so/modern.stripped.so")
SZ_AWS=$(stat -c %s "$BT/so/awslc.stripped.so")
echo "Shared library size (stripped copy of libsshbridge.so):"
printf '  %-40s %9d bytes (%s KiB; unstripped %s KiB)\n' "all algorithms (default features)" "$SZ_ALL" \
    "$(calc "$SZ_ALL / 1024" %.0f)" "$(calc "$(stat -c %s "$BT/so/all.so") / 1024" %.0f)"
printf '  %-40s %9d bytes (%s KiB; unstripped %s KiB)\n' "modern only (--no-default-features)" "$SZ_MOD" \
    "$(calc "$SZ_MOD / 1024" %.0f)" "$(calc "$(stat -c %s "$BT/so/modern.so") / 1024" %.0f)"
printf '  %-40s %9d bytes (%s KiB; unstripped %s KiB)\n' "default features + aws-lc" "$SZ_AWS" \
    "$(calc "$SZ_AWS / 1024" %.0f)" "$(calc "$(stat -c %s "$BT/so/awslc.so") / 1024" %.0f)"
SZ_FLOOR=$(stat -c %s "$BT/so/floor-crypto.stripped.so")
SZ_STD=$(stat -c %s "$BT/so/floor-std.stripped.so")
printf '  %-40s %9d bytes (%s KiB)\n' "floor: std + the modern crypto, no SSH" "$SZ_FLOOR" "$(calc "$SZ_FLOOR / 1024" %.0f)"
printf '  %-40s %9d bytes (%s KiB)\n' "floor: std alone" "$SZ_STD" "$(calc "$SZ_STD / 1024" %.0f)"
echo "  (bench/sizefloor: a cdylib of Rust std as sshbridge uses it, with each RustCrypto primitive of"
echo "  --no-default-features called once the way sshbridge calls it; same profile and flags)"
l2=$(readlink -f /usr/lib/x86_64-linux-gnu/libssh2.so.1 2>/dev/null || true)
lc=$(readlink -f /usr/lib/x86_64-linux-gnu/libcrypto.so.3 2>/dev/null || true)
[[ -n $l2 && -f $l2 ]] && printf '  %-40s %9d bytes (+ libcrypto.so.3 %d bytes)\n' "for comparison: $(basename "$l2")" \
    "$(stat -c %s "$l2")" "$(stat -c %s "$lc" 2>/dev/null || echo 0)"
printf '  %-40s %9d bytes (whole client program)\n' "for comparison: /usr/bin/dbclient" "$(stat -c %s /usr/bin/dbclient)"
echo

# ---- ratios ----
# ratio_line TEXT VALUE OP TARGET   (prints PASS/FAIL; never fails the script)
NPASS=0 NFAIL=0
verdict() { # value op target
    if awk "BEGIN { exit !($1 $2 $3) }" 2>/dev/null; then echo PASS; else echo FAIL; fi
}
target() {
    local text=$1 v=$2 op=$3 t=$4 r
    r=$(verdict "$v" "$op" "$t")
    [[ $v == nan ]] && r=FAIL
    [[ $r == PASS ]] && NPASS=$((NPASS + 1)) || NFAIL=$((NFAIL + 1))
    printf '  %-4s %-76s %7s   (target %s %s)\n' "$r" "$text" "$(calc "$v" %.3fx)" "$op" "$t"
}
PEERS=()
for c in "${CLIENTS[@]}"; do [[ $c == sshbridge ]] || PEERS+=("$c"); done

channels_run
channels_report

echo "Ratios of sshbridge against each peer (speed: wall time of the whole transfer; CPU: bulk):"
printf '  %-22s %12s %12s %14s %14s %12s %12s\n' peer "down speed" "up speed" "down CPU" "up CPU" "conn wall" "conn CPU"
printf '  %-22s %12s %12s %14s %14s %12s %12s\n' "" "(peer/sb t)" "(peer/sb t)" "(sb/peer)" "(sb/peer)" "(sb/peer)" "(sb/peer)"
for p in "${PEERS[@]}"; do
    printf '  %-22s %12s %12s %14s %14s %12s %12s\n' "$(label "$p")" \
        "$(calc "${DW[$p]} / ${DW[sshbridge]}" %.2fx)" "$(calc "${UW[$p]} / ${UW[sshbridge]}" %.2fx)" \
        "$(calc "${NDC[sshbridge]} / ${NDC[$p]}" %.2fx)" "$(calc "${NUC[sshbridge]} / ${NUC[$p]}" %.2fx)" \
        "$(calc "${CW[sshbridge]} / ${CW[$p]}" %.2fx)" "$(calc "${CC[sshbridge]} / ${CC[$p]}" %.2fx)"
done
echo "  (speed: >1 = sshbridge faster; CPU and connect: <1 = sshbridge cheaper/faster)"
echo
FASTEST=dbclient
awk "BEGIN { exit !(${CW[libssh2]} < ${CW[dbclient]}) }" 2>/dev/null && FASTEST=libssh2
echo "Targets (issue 16; CPU/GiB on bulk CPU; the drop-in C API's sshexec unless named):"
G=ssh-gcm
target "download throughput vs ssh -c aes128-gcm@openssh.com" "$(calc "${DW[$G]} / ${DW[sshbridge]}" %.4f)" '>=' 1.0
target "upload throughput vs ssh -c aes128-gcm@openssh.com" "$(calc "${UW[$G]} / ${UW[sshbridge]}" %.4f)" '>=' 1.0
target "download CPU/GiB vs ssh -c aes128-gcm@openssh.com" "$(calc "${NDC[sshbridge]} / ${NDC[$G]}" %.4f)" '<=' 1.0
target "upload CPU/GiB vs ssh -c aes128-gcm@openssh.com" "$(calc "${NUC[sshbridge]} / ${NUC[$G]}" %.4f)" '<=' 1.0
A=sshbridge-awslc
target "aws-lc: download throughput vs ssh -c aes128-gcm@openssh.com" "$(calc "${DW[$G]} / ${DW[$A]}" %.4f)" '>=' 1.1
target "aws-lc: upload throughput vs ssh -c aes128-gcm@openssh.com" "$(calc "${UW[$G]} / ${UW[$A]}" %.4f)" '>=' 1.1
target "aws-lc: download CPU/GiB vs ssh -c aes128-gcm@openssh.com" "$(calc "${NDC[$A]} / ${NDC[$G]}" %.4f)" '<=' 0.8
target "aws-lc: upload CPU/GiB vs ssh -c aes128-gcm@openssh.com" "$(calc "${NUC[$A]} / ${NUC[$G]}" %.4f)" '<=' 0.8
printf '       %-76s %7s\n' "floor: TCP + the C API's socketpair, no SSH (bench/hop.c) vs ssh -c aes128-gcm, down" \
    "$(calc "$HOP_PAIR / (${NDC[$G]} * $GIB)" %.3fx)"
printf '       %-76s %7s\n' "floor: TCP + the C API's socketpair, no SSH (bench/hop.c) vs ssh -c aes128-gcm, up" \
    "$(calc "$HOP_PSEND / (${NUC[$G]} * $GIB)" %.3fx)"
target "connect-to-exit wall vs fastest of dbclient/libssh2 ($FASTEST)" "$(calc "${CW[sshbridge]} / ${CW[$FASTEST]}" %.4f)" '<=' 0.8
target "connect-to-exit CPU vs libssh2" "$(calc "${CC[sshbridge]} / ${CC[libssh2]}" %.4f)" '<=' 0.8
v=$(verdict "$PER_SESS" '<=' 128)
[[ $PER_SESS == nan ]] && v=FAIL
[[ $v == PASS ]] && NPASS=$((NPASS + 1)) || NFAIL=$((NFAIL + 1))
printf '  %-4s %-76s %7s   (target <= 128 KiB)\n' "$v" "RSS per additional idle session" "$PER_SESS KiB"
PER_CH=$(sed -n 's/.*per_channel_kib=\([^ ]*\).*/\1/p' <<<"$CHIDLE")
[[ -n $PER_CH ]] || PER_CH=nan
v=$(verdict "$PER_CH" '<=' 64)
[[ $PER_CH == nan ]] && v=FAIL
[[ $v == PASS ]] && NPASS=$((NPASS + 1)) || NFAIL=$((NFAIL + 1))
printf '  %-4s %-76s %7s   (target <= 64 KiB)\n' "$v" "RSS per additional idle channel" "$PER_CH KiB"
echo "The same throughput and CPU ratios for the Rust API (examples/channels exec; not targets, for reference):"
RA=sshbridge-rust
for row in "download throughput:$(calc "${DW[$G]} / ${DW[$RA]}" %.3fx)" "upload throughput:$(calc "${UW[$G]} / ${UW[$RA]}" %.3fx)" \
    "download CPU/GiB:$(calc "${NDC[$RA]} / ${NDC[$G]}" %.3fx)" "upload CPU/GiB:$(calc "${NUC[$RA]} / ${NUC[$G]}" %.3fx)"; do
    printf '       %-76s %7s\n' "Rust API: ${row%%:*} vs ssh -c aes128-gcm@openssh.com" "${row#*:}"
done
echo "Targets (issue 16, size):"
for pair in "default features:$SZ_ALL:1466368:1432 KiB" "modern client-only (--no-default-features):$SZ_MOD:786432:768 KiB"; do
    IFS=: read -r what sz lim limtxt <<<"$pair"
    v=$(verdict "$sz" '<=' "$lim")
    [[ $v == PASS ]] && NPASS=$((NPASS + 1)) || NFAIL=$((NFAIL + 1))
    printf '  %-4s %-76s %7s   (target <= %s)\n' "$v" "stripped .so, $what" "$((sz / 1024)) KiB" "$limtxt"
done
printf '       %-76s %7s\n' "floor: std + the modern crypto, no SSH code (bench/sizefloor)" "$((SZ_FLOOR / 1024)) KiB"
printf '       %-76s %7s\n' "  left of 768 KiB for all SSH code; sshbridge's own now (modern - floor)" \
    "$(((786432 - SZ_FLOOR) / 1024)) / $(((SZ_MOD - SZ_FLOOR) / 1024)) KiB"
echo
echo "$NPASS PASS, $NFAIL FAIL; $((($(date +%s) - T0) / 60)) min $((($(date +%s) - T0) % 60)) s"
if ((${#FAILURES[@]})); then
    echo "Runs that failed (left out of the medians):"
    printf '  %s\n' "${FAILURES[@]}"
    echo "  last client stderr lines:"
    tail -5 "$ERRLOG" | sed 's/^/    /'
fi
exit 0
