# shellcheck shell=bash
# bench/lib.sh — shared setup for scripts/bench.sh and bench/profile.sh (source it; bash).
#
# Provides:
#   bench_init           root check, deps (scripts/install-deps.sh if anything is missing),
#                        temp dir $BT (removed by bench_cleanup)
#   bench_build_lib      cargo rustc --release, staticlib + cdylib (the main target dir, default features)
#   bench_build_c DIR    sshexec, libssh2_exec, rss_sessions, timeit into DIR
#   bench_keys           fresh ed25519 user key ($BT/id_ed25519, Dropbear copy $BT/id_ed25519.db),
#                        authorised for sshbtest (removed again by bench_cleanup)
#   bench_sshd           one throwaway sshd on a free 127.0.0.1 port: $SSHD_PORT, $SSHD_LOG,
#                        $HOSTKEY_PUB ("ssh-ed25519 AAAA..."); killed by bench_cleanup
#   bench_sshd10         a second one, OpenSSH 10.0 (/opt/openssh-10, see scripts/install-deps.sh),
#                        same config and host key, KexAlgorithms mlkem768x25519-sha256 and
#                        curve25519-sha256: $SSHD10_PORT, $SSHD10_LOG; killed by bench_cleanup
#   client_cmd NAME CMD  sets the array CLIENT to the command line that runs CMD remotely with
#                        client NAME: sshbridge | sshbridge-awslc | ssh | ssh-gcm | ssh-same |
#                        dbclient | libssh2 | ssh10 | ssh10-x25519 (OpenSSH 10.0's ssh, default
#                        kex / curve25519); port $CLIENT_PORT if set, else $SSHD_PORT
#   bench_cleanup        kill the sshds (and their session processes), unauthorise the key, rm $BT
#
# Conventions: everything runs as root (sshd must switch to the test user); the test account
# and the authorized_keys locking protocol are those of tests/support/mod.rs.

BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly BENCH_USER=sshbtest
readonly BENCH_HOME=/home/sshbtest
readonly AK=$BENCH_HOME/.ssh/authorized_keys
readonly AK_LOCK=$BENCH_HOME/.ssh/authorized_keys.lock
# tests/support/mod.rs drops "sshb-test-pid<N>-..." lines whose process is gone, so a bench
# run that is SIGKILLed (no trap) still gets its key removed by the next test run.
BENCH_KEY_COMMENT="sshb-test-pid$$-bench"
BT=""
SSHD_PID=""
SSHD_PORT=""
SSHD10_PID=""
SSHD10_PORT=""
SSHD10_LOG=""
SERVE_PID=""
SERVE_PORT=""
BENCH_CGROUPS=() # cgroups bench.sh made to count server CPU; removed by bench_cleanup
readonly SSHD10_BIN=/opt/openssh-10/usr/sbin/sshd
readonly SSH10_BIN=/opt/openssh-10/usr/bin/ssh
SSHD_LOG=""
HOSTKEY_PUB=""
KEY_AUTHORISED=0
SSH_SAME_OPTS=()

blog() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
bdie() { blog "ERROR: $*"; exit 1; }

bench_init() {
    [[ $(id -u) -eq 0 ]] || bdie "run as root: the throwaway sshd must switch to user $BENCH_USER"
    local need=(/usr/sbin/sshd /usr/bin/ssh /usr/bin/ssh-keygen /usr/bin/dbclient
        /usr/bin/dropbearconvert /usr/include/libssh2.h /usr/bin/flock /run/sshd "$BENCH_HOME/.ssh")
    local missing=0 p
    for p in "${need[@]}"; do [[ -e $p ]] || missing=1; done
    id -u "$BENCH_USER" >/dev/null 2>&1 || missing=1
    if ((missing)); then
        blog "installing dependencies (scripts/install-deps.sh)"
        flock /tmp/sshbridge-install-deps.lock bash "$BENCH_ROOT/scripts/install-deps.sh" >&2 ||
            bdie "scripts/install-deps.sh failed"
    fi
    command -v cargo >/dev/null || bdie "cargo not found"
    command -v gcc >/dev/null || bdie "gcc not found"
    BT=$(mktemp -d /tmp/sshbridge-bench.XXXXXX)
    chmod 755 "$BT"
}

# The C artifacts as CMake builds them: `cargo rustc --crate-type staticlib --crate-type cdylib`
# (without the rlib crate type, LTO can drop the Rust API the C library does not use).
BENCH_CARGO_C=(cargo rustc --release --lib --crate-type staticlib --crate-type cdylib --quiet)

bench_build_lib() {
    blog "${BENCH_CARGO_C[*]}"
    (cd "$BENCH_ROOT" && "${BENCH_CARGO_C[@]}") >&2 || bdie "library build failed"
}

# Link line of the Rust static library (cargo's native-static-libs for this target).
readonly BENCH_NATIVE_LIBS=(-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc)

# bench_build_c OUTDIR [LIBDIR]: the C programs, linked statically against LIBDIR/libsshbridge.a
# (default: target/release).
bench_build_c() {
    local out=$1 lib=${2:-$BENCH_ROOT/target/release}
    mkdir -p "$out"
    local cflags=(-O2 -g -Wall -Wextra -I"$BENCH_ROOT/include")
    [[ -f $BENCH_ROOT/examples/sshexec.c ]] || bdie "examples/sshexec.c is missing"
    gcc "${cflags[@]}" -o "$out/sshexec" "$BENCH_ROOT/examples/sshexec.c" "$lib/libsshbridge.a" \
        "${BENCH_NATIVE_LIBS[@]}" || bdie "cannot build sshexec"
    gcc "${cflags[@]}" -o "$out/rss_sessions" "$BENCH_ROOT/bench/rss_sessions.c" "$lib/libsshbridge.a" \
        "${BENCH_NATIVE_LIBS[@]}" || bdie "cannot build rss_sessions"
    gcc "${cflags[@]}" -o "$out/libssh2_exec" "$BENCH_ROOT/bench/libssh2_exec.c" -lssh2 ||
        bdie "cannot build libssh2_exec"
    gcc "${cflags[@]}" -o "$out/timeit" "$BENCH_ROOT/bench/timeit.c" || bdie "cannot build timeit"
    gcc "${cflags[@]}" -pthread -o "$out/hop" "$BENCH_ROOT/bench/hop.c" || bdie "cannot build hop"
}

# Rewrite authorized_keys under the shared lock, atomically (tmp + rename), keeping the
# owner and mode. $1: "add" or "remove".
ak_edit() {
    local what=$1
    (
        flock -x 9
        local tmp=$AK.tmp.bench.$$
        if [[ $what == add ]]; then
            { [[ -f $AK ]] && grep -v -F -- "$BENCH_KEY_COMMENT" "$AK"; cat "$BT/id_ed25519.pub"; } >"$tmp"
        else
            { [[ -f $AK ]] && grep -v -F -- "$BENCH_KEY_COMMENT" "$AK"; true; } >"$tmp"
        fi
        chown "$BENCH_USER:" "$tmp" && chmod 600 "$tmp" && mv -f "$tmp" "$AK"
    ) 9>"$AK_LOCK"
}

bench_keys() {
    ssh-keygen -q -t ed25519 -N '' -C "$BENCH_KEY_COMMENT" -f "$BT/id_ed25519" || bdie "ssh-keygen failed"
    dropbearconvert openssh dropbear "$BT/id_ed25519" "$BT/id_ed25519.db" >/dev/null 2>&1 ||
        bdie "dropbearconvert failed"
    ak_edit add || bdie "cannot edit $AK"
    KEY_AUTHORISED=1
    mkdir -p "$BT/dbhome/.ssh"
    chmod 700 "$BT/dbhome" "$BT/dbhome/.ssh"
}

# All live descendants of pid $1.
descendants() {
    local kid
    for kid in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        echo "$kid"
        descendants "$kid"
    done
}

bench_sshd() {
    ssh-keygen -q -t ed25519 -N '' -C bench-hostkey -f "$BT/host_ed25519" || bdie "ssh-keygen failed"
    HOSTKEY_PUB=$(cut -d' ' -f1,2 "$BT/host_ed25519.pub")
    SSHD_LOG=$BT/sshd.log
    local attempt port
    for attempt in 1 2 3 4 5; do
        port=$((20000 + RANDOM % 12000))
        ss -Hltn 2>/dev/null | awk '{print $4}' | grep -q ":$port\$" && continue
        cat >"$BT/sshd_config" <<EOF
# throwaway sshd of scripts/bench.sh
Port $port
ListenAddress 127.0.0.1
HostKey $BT/host_ed25519
PidFile $BT/sshd.pid
UsePAM no
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowUsers $BENCH_USER
PermitRootLogin no
MaxStartups 200
MaxSessions 200
# DEBUG (= DEBUG1), not VERBOSE: only debug1 logs the negotiated kex/cipher/MAC
# ("kex: client->server cipher: ..."); nothing is logged per packet at this level.
LogLevel DEBUG
PrintMotd no
PrintLastLog no
UseDNS no
X11Forwarding no
AllowTcpForwarding no
EOF
        : >"$SSHD_LOG"
        /usr/sbin/sshd -D -f "$BT/sshd_config" -E "$SSHD_LOG" &
        SSHD_PID=$!
        local i
        for i in $(seq 100); do
            if ! kill -0 "$SSHD_PID" 2>/dev/null; then break; fi
            if grep -q "Server listening on 127.0.0.1 port $port" "$SSHD_LOG"; then
                SSHD_PORT=$port
                blog "sshd (pid $SSHD_PID) listening on 127.0.0.1:$port"
                printf '[127.0.0.1]:%s %s\n' "$port" "$HOSTKEY_PUB" >"$BT/known_hosts"
                return 0
            fi
            sleep 0.1
        done
        kill "$SSHD_PID" 2>/dev/null || true
        wait "$SSHD_PID" 2>/dev/null || true
        SSHD_PID=""
        blog "sshd did not start on port $port (attempt $attempt):"
        tail -5 "$SSHD_LOG" >&2
    done
    bdie "cannot start sshd"
}

bench_sshd10() {
    [[ -x $SSHD10_BIN && -x $SSH10_BIN ]] || bdie "OpenSSH 10.0 missing in /opt/openssh-10 (run scripts/install-deps.sh)"
    SSHD10_LOG=$BT/sshd10.log
    local attempt port i
    for attempt in 1 2 3 4 5; do
        port=$((20000 + RANDOM % 12000))
        ss -Hltn 2>/dev/null | awk '{print $4}' | grep -q ":$port\$" && continue
        {
            sed -e "s/^Port .*/Port $port/" -e "s|^PidFile .*|PidFile $BT/sshd10.pid|" "$BT/sshd_config"
            echo "KexAlgorithms mlkem768x25519-sha256,curve25519-sha256"
            echo "SshdSessionPath /opt/openssh-10/usr/lib/openssh/sshd-session"
            echo "SshdAuthPath /opt/openssh-10/usr/lib/openssh/sshd-auth"
        } >"$BT/sshd10_config"
        : >"$SSHD10_LOG"
        "$SSHD10_BIN" -D -f "$BT/sshd10_config" -E "$SSHD10_LOG" &
        SSHD10_PID=$!
        for i in $(seq 100); do
            if ! kill -0 "$SSHD10_PID" 2>/dev/null; then break; fi
            if grep -q "Server listening on 127.0.0.1 port $port" "$SSHD10_LOG"; then
                SSHD10_PORT=$port
                blog "sshd 10.0 (pid $SSHD10_PID) listening on 127.0.0.1:$port"
                printf '[127.0.0.1]:%s %s\n' "$port" "$HOSTKEY_PUB" >>"$BT/known_hosts"
                return 0
            fi
            sleep 0.1
        done
        kill "$SSHD10_PID" 2>/dev/null || true
        wait "$SSHD10_PID" 2>/dev/null || true
        SSHD10_PID=""
        blog "sshd 10.0 did not start on port $port (attempt $attempt):"
        tail -5 "$SSHD10_LOG" >&2
    done
    bdie "cannot start sshd 10.0"
}

# client_cmd NAME REMOTE_COMMAND: sets CLIENT=(argv...).
client_cmd() {
    local name=$1 cmd=$2
    local port=${CLIENT_PORT:-$SSHD_PORT}
    local ssh_opts=(-F /dev/null -T -p "$port" -l "$BENCH_USER" -i "$BT/id_ed25519"
        -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes -o StrictHostKeyChecking=yes
        -o UserKnownHostsFile="$BT/known_hosts" -o GlobalKnownHostsFile=/dev/null
        -o UpdateHostKeys=no -o ControlMaster=no -o ControlPath=none -o LogLevel=ERROR)
    case $name in
    sshbridge) CLIENT=("$BIN/sshexec" -p "$port" -l "$BENCH_USER" -i "$BT/id_ed25519"
        -k "$HOSTKEY_PUB" 127.0.0.1 "$cmd") ;;
    # The same program linked against the --features aws-lc build (bench.sh builds it).
    sshbridge-awslc) CLIENT=("$BIN/sshexec-awslc" -p "$port" -l "$BENCH_USER" -i "$BT/id_ed25519"
        -k "$HOSTKEY_PUB" 127.0.0.1 "$cmd") ;;
    # The Rust API (examples/channels exec: Session::exec, Channel Read/Write), no socketpair.
    sshbridge-rust) CLIENT=("$BENCH_ROOT/target/release/examples/channels" -p "$port" -l "$BENCH_USER"
        -i "$BT/id_ed25519" -k "$HOSTKEY_PUB" 127.0.0.1 exec "$cmd") ;;
    ssh10) CLIENT=("$SSH10_BIN" "${ssh_opts[@]}" 127.0.0.1 "$cmd") ;;
    ssh10-x25519) CLIENT=("$SSH10_BIN" -o KexAlgorithms=curve25519-sha256 "${ssh_opts[@]}" 127.0.0.1 "$cmd") ;;
    ssh) CLIENT=(ssh "${ssh_opts[@]}" 127.0.0.1 "$cmd") ;;
    ssh-gcm) CLIENT=(ssh -c aes128-gcm@openssh.com "${ssh_opts[@]}" 127.0.0.1 "$cmd") ;;
    # ssh forced to sshbridge's cipher (and MAC): SSH_SAME_OPTS=(-c CIPHER [-m MAC]).
    ssh-same) CLIENT=(ssh "${SSH_SAME_OPTS[@]}" "${ssh_opts[@]}" 127.0.0.1 "$cmd") ;;
    # -y: accept the host key the first time (written to $BT/dbhome/.ssh/known_hosts by the
    # probe run), check it on every later run.
    dbclient) CLIENT=(env HOME="$BT/dbhome" dbclient -y -p "$port" -l "$BENCH_USER"
        -i "$BT/id_ed25519.db" -W 2097152 127.0.0.1 "$cmd") ;;
    libssh2) CLIENT=("$BIN/libssh2_exec" -p "$port" -l "$BENCH_USER" -i "$BT/id_ed25519"
        -k "$HOSTKEY_PUB" 127.0.0.1 "$cmd") ;;
    *) bdie "unknown client $name" ;;
    esac
}

# kill_sshd PID: an sshd we started and its session processes.
kill_sshd() {
    local kids
    kids=$(descendants "$1")
    # shellcheck disable=SC2086
    [[ -n $kids ]] && kill -TERM $kids 2>/dev/null
    kill -TERM "$1" 2>/dev/null
    wait "$1" 2>/dev/null
    sleep 0.2
    # shellcheck disable=SC2086
    [[ -n $kids ]] && kill -KILL $kids 2>/dev/null
}

bench_cleanup() {
    local rc=$?
    set +e
    if [[ -n $SSHD_PID ]]; then
        kill_sshd "$SSHD_PID"
        SSHD_PID=""
    fi
    if [[ -n $SSHD10_PID ]]; then
        kill_sshd "$SSHD10_PID"
        SSHD10_PID=""
    fi
    if [[ -n $SERVE_PID ]]; then
        kill_sshd "$SERVE_PID" # examples/serve (bench.sh's server section) and its children
        SERVE_PID=""
    fi
    local cg i
    for cg in "${BENCH_CGROUPS[@]}"; do # empty once the servers and their children are gone
        for i in 1 2 3 4 5 6 7 8 9 10; do rmdir "$cg" 2>/dev/null && break; sleep 0.2; done
    done
    BENCH_CGROUPS=()
    if ((KEY_AUTHORISED)); then
        ak_edit remove
        KEY_AUTHORISED=0
    fi
    if [[ -n $BT && -d $BT ]]; then
        [[ -n ${BENCH_KEEP:-} ]] && blog "keeping $BT (BENCH_KEEP set)" || rm -rf "$BT"
    fi
    return $rc
}
