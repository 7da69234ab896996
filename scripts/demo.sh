#!/usr/bin/env bash
# demo.sh — sshbridge's C API doing its main job, end to end, on a throwaway server:
#
#   1. prepares the machine if needed (scripts/install-deps.sh: OpenSSH, the account sshbtest);
#   2. builds the library and examples/sshexec with CMake (build/demo, Release);
#   3. starts an OpenSSH sshd on a free loopback port with a fresh ed25519 host key, and
#      authorises a fresh ed25519 user key (OpenSSH format) for sshbtest;
#   4. runs
#        sshexec -i KEY -k "<host key>" -p PORT -l sshbtest 127.0.0.1 \
#          'echo "hello from $(hostname)"; echo "this is stderr" >&2; exit 3'
#      and shows its stdout, stderr and exit code;
#   5. stops the server and removes every temporary file and its authorized_keys line
#      (also on errors and Ctrl-C).
#
# Run as root (sshd must switch to the test user). Idempotent; leaves nothing running.
# Exit status 0 if the demo produced what it should (stdout, stderr, exit code 3).
set -euo pipefail

readonly TEST_USER=sshbtest
readonly AK_DIR=/home/sshbtest/.ssh
readonly TAG=sshb-demo-pid

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly ROOT=${HERE%/scripts}
readonly BUILD=$ROOT/build/demo

say() { if [[ -t 2 ]]; then printf "\033[1mdemo:\033[0m %s\n" "$*" >&2; else printf "demo: %s\n" "$*" >&2; fi; }
die() { say "ERROR: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run as root: sshd has to switch to user $TEST_USER"

# --- 1. environment ---------------------------------------------------------------------------
need_deps=0
for t in /usr/sbin/sshd /usr/bin/ssh-keygen /usr/bin/flock /usr/bin/ss cmake cc; do
    command -v "$t" >/dev/null 2>&1 || need_deps=1
done
id -u "$TEST_USER" >/dev/null 2>&1 && [[ -d $AK_DIR && -d /run/sshd ]] || need_deps=1
if ((need_deps)); then
    say "preparing the machine (scripts/install-deps.sh)"
    flock "${TMPDIR:-/tmp}/sshbridge-install-deps.lock" bash "$ROOT/scripts/install-deps.sh"
fi
if ! command -v cargo >/dev/null 2>&1; then
    [[ -x $HOME/.cargo/bin/cargo ]] && PATH=$HOME/.cargo/bin:$PATH
    command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust (https://rustup.rs) first"
fi

# --- 2. build ---------------------------------------------------------------------------------
mkdir -p "$ROOT/build"
say "building the library and examples/sshexec (cmake, $BUILD)"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DSSHBRIDGE_BUILD_TESTS=OFF \
    -DSSHBRIDGE_BUILD_EXAMPLES=ON >"$ROOT/build/demo-configure.log" 2>&1 ||
    { cat "$ROOT/build/demo-configure.log" >&2; die "cmake configure failed"; }
cmake --build "$BUILD" --target sshexec -j "$(nproc)" >"$BUILD/build.log" 2>&1 ||
    { tail -n 40 "$BUILD/build.log" >&2; die "build failed (full log: $BUILD/build.log)"; }
readonly SSHEXEC=$BUILD/examples/sshexec
[[ -x $SSHEXEC ]] || die "$SSHEXEC was not built"

# --- 3. throwaway server ------------------------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/sshbridge-demo.XXXXXX")
chmod 755 "$TMP"
SSHD_PID=

pid_alive() { [[ -n ${1:-} && -d /proc/$1 ]] && ! grep -q '^[^)]*) Z' "/proc/$1/stat" 2>/dev/null; }

# Rewrite authorized_keys under the lock shared with the Rust tests and the CTest fixture:
# drop our line ($1 = comment to drop, may be empty) and lines of dead demos; append $2.
edit_authorized_keys() {
    local drop=$1 add=$2 ak=$AK_DIR/authorized_keys line comment pid
    exec {lockfd}>>"$AK_DIR/authorized_keys.lock"
    flock -x "$lockfd"
    : >"$ak.demo.$$"
    if [[ -f $ak ]]; then
        while IFS= read -r line || [[ -n $line ]]; do
            comment=$(awk '{ print $3 }' <<<"$line")
            if [[ $comment == "$TAG"* ]]; then
                [[ -n $drop && $comment == "$drop" ]] && continue
                pid=${comment#"$TAG"}
                pid_alive "$pid" || continue
            fi
            [[ -z ${line// /} ]] || printf '%s\n' "$line" >>"$ak.demo.$$"
        done <"$ak"
    fi
    [[ -z $add ]] || printf '%s\n' "$add" >>"$ak.demo.$$"
    chown "$TEST_USER:" "$ak.demo.$$"
    chmod 600 "$ak.demo.$$"
    mv -f "$ak.demo.$$" "$ak"
    exec {lockfd}>&-
}

cleanup() {
    local rc=$? kids
    trap - EXIT INT TERM
    if pid_alive "$SSHD_PID"; then
        kids=$(ps -o pid= --ppid "$SSHD_PID" 2>/dev/null || true)
        kill -TERM $kids "$SSHD_PID" 2>/dev/null || true
        for _ in $(seq 50); do pid_alive "$SSHD_PID" || break; sleep 0.1; done
        kill -KILL "$SSHD_PID" 2>/dev/null || true
        wait "$SSHD_PID" 2>/dev/null || true
    fi
    edit_authorized_keys "$TAG$$" "" 2>/dev/null || true
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "fresh keys in $TMP"
ssh-keygen -q -N '' -C demo-host -t ed25519 -f "$TMP/host_ed25519"
ssh-keygen -q -N '' -C "$TAG$$" -t ed25519 -f "$TMP/id_ed25519"
edit_authorized_keys "" "$(cat "$TMP/id_ed25519.pub")"
HOSTKEY=$(cut -d' ' -f1,2 "$TMP/host_ed25519.pub")

free_port() {
    local p used
    used=$(ss -Htan | awk '{ n = split($4, a, ":"); print a[n] }')
    while :; do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        grep -qx "$p" <<<"$used" || { echo "$p"; return; }
    done
}

for attempt in 1 2 3 4 5; do
    PORT=$(free_port)
    cat >"$TMP/sshd_config" <<EOF
Port $PORT
ListenAddress 127.0.0.1
HostKey $TMP/host_ed25519
PidFile $TMP/sshd.pid
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PermitRootLogin no
AllowUsers $TEST_USER
PrintMotd no
UseDNS no
LogLevel INFO
EOF
    setsid /usr/sbin/sshd -D -e -f "$TMP/sshd_config" </dev/null >"$TMP/sshd.log" 2>&1 &
    SSHD_PID=$!
    for _ in $(seq 250); do
        pid_alive "$SSHD_PID" || break
        ss -Hltnp "sport = :$PORT" 2>/dev/null | grep -q "pid=$SSHD_PID," && break 2
        sleep 0.02
    done
    kill -KILL "$SSHD_PID" 2>/dev/null || true
    wait "$SSHD_PID" 2>/dev/null || true
    SSHD_PID=
    grep -qi 'address already in use' "$TMP/sshd.log" || { cat "$TMP/sshd.log" >&2; die "sshd did not start"; }
done
[[ -n $SSHD_PID ]] || die "sshd found no free port"
say "OpenSSH sshd (pid $SSHD_PID) on 127.0.0.1:$PORT, host key $(ssh-keygen -l -f "$TMP/host_ed25519.pub" | awk '{ print $2 }')"

# --- 4. the main job --------------------------------------------------------------------------
REMOTE='echo "hello from $(hostname)"; echo "this is stderr" >&2; exit 3'
CMD=("$SSHEXEC" -i "$TMP/id_ed25519" -k "$HOSTKEY" -p "$PORT" -l "$TEST_USER" 127.0.0.1 "$REMOTE")
echo
echo "\$ ${CMD[0]#"$ROOT/"} -i $TMP/id_ed25519 -k \"$HOSTKEY\" -p $PORT -l $TEST_USER 127.0.0.1 '$REMOTE'"
set +e
"${CMD[@]}" </dev/null >"$TMP/stdout" 2>"$TMP/stderr"
CODE=$?
set -e
echo "----- stdout ------"
cat "$TMP/stdout"
echo "----- stderr ------"
cat "$TMP/stderr"
echo "----- exit code ---"
echo "$CODE"
echo "-------------------"
echo

want_out="hello from $(hostname)"
if [[ $CODE -eq 3 && $(cat "$TMP/stdout") == "$want_out" && $(cat "$TMP/stderr") == "this is stderr" ]]; then
    say "OK: remote stdout, stderr and exit code 3 arrived separately and intact"
else
    say "UNEXPECTED: wanted stdout \"$want_out\", stderr \"this is stderr\", exit code 3"
    tail -n 20 "$TMP/sshd.log" >&2 || true
    exit 1
fi
