#!/usr/bin/env bash
# ctest-servers.sh — the CTest fixture behind c-tests/clitest1: throwaway SSH servers on
# loopback with fresh keys, for the test account of scripts/install-deps.sh.
#
#   ctest-servers.sh start STATEDIR    start the servers, write STATEDIR/servers.env
#   ctest-servers.sh stop  STATEDIR    stop them, remove our authorized_keys lines and keys
#   ctest-servers.sh status STATEDIR   exit 0 if both servers still run
#
# start:
#   * runs scripts/install-deps.sh (under the same flock as the Rust tests) if a tool, the
#     account sshbtest or /run/sshd is missing;
#   * OpenSSH sshd with fresh RSA and DSA host keys, on a free port of 127.0.0.1 and [::1]:
#     password and public key auth, `HostKeyAlgorithms +ssh-dss`,
#     `PubkeyAcceptedAlgorithms +ssh-dss,ssh-rsa`, MaxStartups 200 (50 parallel logins),
#     RekeyLimit 256K (the 1 MiB transfers re-exchange keys several times);
#   * Dropbear with fresh RSA and DSS host keys on another free port, same addresses;
#   * (when lo has ::1) a second sshd, "sshd_split", same host keys and settings, listening on
#     two other free ports: P4 on 127.0.0.1 only and P6 on [::1] only, so that nothing answers
#     on [::1]:P4 or 127.0.0.1:P6 (exttest.dual_stack: a name with both addresses must reach
#     it whichever address comes first);
#   * fresh RSA and DSA user keys made by dropbearkey (Dropbear's binary format, what eCos'
#     privatekey2c embeds), plus an OpenSSH-format copy of the RSA key; their public lines
#     (comment "sshb-ctest-pid<sshd pid>-...") are added to ~sshbtest/.ssh/authorized_keys
#     under flock(1) on authorized_keys.lock, exactly like tests/support/mod.rs does. Lines
#     of fixtures whose sshd is gone are dropped at the same time.
#   * STATEDIR/servers.env: KEY='value' lines (shell-sourceable) read by clitest1.
# stop: kills both servers and every process they started, removes our authorized_keys
#   lines and the private keys; the logs stay in STATEDIR for post-mortems.
#
# Needs root (sshd must switch to the test user). Idempotent: start stops a previous
# instance in the same STATEDIR first; stop on a stopped STATEDIR does nothing.
set -euo pipefail

readonly TEST_USER=sshbtest
readonly TEST_HOME=/home/sshbtest
readonly TEST_PASSWORD='sshb-Test-pw1'   # mirrors scripts/install-deps.sh
readonly SSHD=/usr/sbin/sshd DROPBEAR=/usr/sbin/dropbear
readonly DROPBEARKEY=/usr/bin/dropbearkey DROPBEARCONVERT=/usr/bin/dropbearconvert
readonly SSH_KEYGEN=/usr/bin/ssh-keygen
readonly AK_DIR=$TEST_HOME/.ssh
readonly AK=$AK_DIR/authorized_keys
readonly AK_LOCK=$AK_DIR/authorized_keys.lock
readonly TAG=sshb-ctest-pid

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly ROOT=${HERE%/scripts}

log() { printf 'ctest-servers: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

usage() { die "usage: $0 start|stop|status STATEDIR"; }
(($# == 2)) || usage
readonly ACTION=$1
STATE=$2
[[ $STATE == /* ]] || STATE=$PWD/$STATE
readonly STATE

pid_alive() { [[ -n ${1:-} && -d /proc/$1 ]] && ! grep -q '^[^)]*) Z' "/proc/$1/stat" 2>/dev/null; }

# True if pid $1 is a server we started from $STATE (its command line names the dir).
ours() { pid_alive "$1" && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF -- "$STATE/"; }

# Every live descendant of pid $1.
descendants() {
    local kids k
    kids=$(ps -o pid= --ppid "$1" 2>/dev/null || true)
    for k in $kids; do
        echo "$k"
        descendants "$k"
    done
}

ensure_env() {
    [[ $(id -u) -eq 0 ]] || die "must run as root: sshd has to switch to user $TEST_USER"
    local missing=()
    for t in "$SSHD" "$DROPBEAR" "$DROPBEARKEY" "$DROPBEARCONVERT" "$SSH_KEYGEN" /usr/bin/flock /usr/bin/ss; do
        [[ -x $t ]] || missing+=("$t")
    done
    id -u "$TEST_USER" >/dev/null 2>&1 || missing+=("user $TEST_USER")
    [[ -d $AK_DIR ]] || missing+=("$AK_DIR")
    [[ -d /run/sshd ]] || missing+=(/run/sshd)
    if ((${#missing[@]})); then
        log "missing: ${missing[*]}; running scripts/install-deps.sh"
        flock "${TMPDIR:-/tmp}/sshbridge-install-deps.lock" bash "$ROOT/scripts/install-deps.sh" >&2
    fi
}

have_ipv6() { grep -q '^00000000000000000000000000000001 .* lo$' /proc/net/if_inet6 2>/dev/null; }

# A TCP port nobody uses right now (the server start re-checks ownership).
free_port() {
    local p used
    used=$(ss -Htan 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }')
    while :; do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        grep -qx "$p" <<<"$used" || { echo "$p"; return; }
    done
}

# True if pid $1 holds a listening TCP socket on port $2 (on every address in $3...).
listening() {
    local pid=$1 port=$2 addr
    shift 2
    for addr in "$@"; do
        ss -Hltnp "src $addr:$port" 2>/dev/null | grep -q "pid=$pid," || return 1
    done
}

# start_server NAME CMD... — CMD contains the literal word @PORT@; tries new ports on a lost
# race. Sets SERVER_PID and SERVER_PORT. If CMD also contains @PORT6@, the server is to listen
# on 127.0.0.1:@PORT@ and [::1]:@PORT6@ only (a second free port, set in SERVER_PORT6).
start_server() {
    local name=$1 attempt port port6= pid i split=0
    shift
    local addrs=(127.0.0.1)
    have_ipv6 && addrs+=('[::1]')
    [[ "$*" == *@PORT6@* ]] && split=1
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        if ((split)); then
            port6=$(free_port)
            [[ $port6 != "$port" ]] || continue
        fi
        local cmd=("${@//@PORT@/$port}")
        cmd=("${cmd[@]//@PORT6@/$port6}")
        # New session (own process group), no terminal, output to its log: ctest must not
        # wait for it, and stop can find everything it forks.
        setsid "${cmd[@]}" </dev/null >>"$STATE/$name.log" 2>&1 &
        pid=$!
        for ((i = 0; i < 500; i++)); do
            pid_alive "$pid" || break
            if ((split)) && listening "$pid" "$port" 127.0.0.1 && listening "$pid" "$port6" '[::1]'; then
                echo "$pid" >"$STATE/$name.pid"
                SERVER_PID=$pid SERVER_PORT=$port SERVER_PORT6=$port6
                log "$name listening on 127.0.0.1 port $port and [::1] port $port6 (pid $pid)"
                return 0
            elif ((!split)) && listening "$pid" "$port" "${addrs[@]}"; then
                echo "$pid" >"$STATE/$name.pid"
                SERVER_PID=$pid SERVER_PORT=$port
                log "$name listening on port $port (pid $pid)"
                return 0
            fi
            sleep 0.02
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        log "$name: attempt $attempt on port $port failed"
        grep -qiE 'already in use|address in use' "$STATE/$name.log" || break
    done
    tail -n 30 "$STATE/$name.log" >&2 || true
    die "$name did not start"
}

# Public "type base64" of a key file (OpenSSH or Dropbear format).
pub_of() {
    local out
    if out=$("$SSH_KEYGEN" -y -P '' -f "$1" 2>/dev/null); then :; else
        out=$("$DROPBEARKEY" -y -f "$1" | grep -E '^(ssh-|ecdsa-)')
    fi
    awk 'NR == 1 { print $1, $2 }' <<<"$out"
}

# SHA256 fingerprint ("SHA256:...") of a public key line.
fp_of() { "$SSH_KEYGEN" -l -E sha256 -f /dev/stdin <<<"$1" | awk '{ print $2 }'; }

# Rewrite authorized_keys under the lock: drop lines of dead fixtures and lines matching
# $1 (a comment prefix to remove, may be empty), then append the lines in $2 (may be empty).
edit_authorized_keys() {
    local drop=$1 add=$2 tmp line comment pid
    exec {lockfd}>>"$AK_LOCK"
    flock -x "$lockfd"
    tmp=$AK.ctest.$$
    : >"$tmp"
    if [[ -f $AK ]]; then
        while IFS= read -r line || [[ -n $line ]]; do
            [[ -n ${line// /} ]] || continue
            comment=$(awk '{ print $3 }' <<<"$line")
            if [[ $comment == "$TAG"* ]]; then
                pid=${comment#"$TAG"}
                pid=${pid%%-*}
                [[ -n $drop && $comment == "$drop"* ]] && continue
                pid_alive "$pid" || continue
            fi
            printf '%s\n' "$line" >>"$tmp"
        done <"$AK"
    fi
    [[ -z $add ]] || printf '%s\n' "$add" >>"$tmp"
    chown "$TEST_USER:" "$tmp"
    chmod 600 "$tmp"
    mv -f "$tmp" "$AK"
    exec {lockfd}>&-
}

stop() {
    local name pid victims sshd_pid=
    [[ -d $STATE ]] || return 0
    for name in sshd dropbear sshd_split; do
        [[ -f $STATE/$name.pid ]] || continue
        pid=$(<"$STATE/$name.pid")
        [[ $name == sshd ]] && sshd_pid=$pid
        if ours "$pid"; then
            # Sessions (setsid'd by sshd) first, then the listener.
            victims=$(descendants "$pid")
            kill -TERM $victims "$pid" 2>/dev/null || true
            for _ in $(seq 50); do
                pid_alive "$pid" || break
                sleep 0.1
            done
            victims=$(descendants "$pid")
            kill -KILL $victims "$pid" 2>/dev/null || true
            log "$name (pid $pid) stopped"
        fi
        rm -f "$STATE/$name.pid"
    done
    if [[ -n $sshd_pid ]]; then
        edit_authorized_keys "$TAG$sshd_pid-" ""
    fi
    # Keys and config go; logs stay for post-mortems.
    find "$STATE" -mindepth 1 ! -name '*.log' -exec rm -rf {} + 2>/dev/null || true
}

start() {
    ensure_env
    stop
    rm -rf "$STATE"
    mkdir -p "$STATE"
    chmod 755 "$STATE"
    umask 077
    local v6=0
    have_ipv6 && v6=1

    # Keys, in parallel (DSA parameter generation takes a moment).
    "$SSH_KEYGEN" -q -N '' -C sshd-host-rsa -t rsa -b 2048 -f "$STATE/sshd_host_rsa" &
    "$SSH_KEYGEN" -q -N '' -C sshd-host-dsa -t dsa -f "$STATE/sshd_host_dsa" &
    "$DROPBEARKEY" -t rsa -s 2048 -f "$STATE/dropbear_host_rsa" >/dev/null 2>&1 &
    "$DROPBEARKEY" -t dss -f "$STATE/dropbear_host_dss" >/dev/null 2>&1 &
    "$DROPBEARKEY" -t rsa -s 2048 -f "$STATE/id_rsa" >/dev/null 2>&1 &
    "$DROPBEARKEY" -t dss -f "$STATE/id_dsa" >/dev/null 2>&1 &
    wait
    for k in sshd_host_rsa sshd_host_dsa dropbear_host_rsa dropbear_host_dss id_rsa id_dsa; do
        [[ -s $STATE/$k ]] || die "key generation failed: $k"
    done
    # The same RSA user key in OpenSSH's PEM form (for the key-as-text case, keylen 0).
    "$DROPBEARCONVERT" dropbear openssh "$STATE/id_rsa" "$STATE/id_rsa.openssh" >/dev/null 2>&1 ||
        die "dropbearconvert failed"

    # sshd
    local cfg=$STATE/sshd_config
    {
        echo "# generated by scripts/ctest-servers.sh"
        echo "Port @PORT@"
        echo "ListenAddress 127.0.0.1"
        ((v6)) && echo "ListenAddress ::1"
        echo "HostKey $STATE/sshd_host_rsa"
        echo "HostKey $STATE/sshd_host_dsa"
        cat <<'EOF'
HostKeyAlgorithms +ssh-dss
PubkeyAcceptedAlgorithms +ssh-dss,ssh-rsa
UsePAM no
StrictModes no
PasswordAuthentication yes
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin no
AllowUsers sshbtest
MaxStartups 200
RekeyLimit 256K
MaxAuthTries 10
AcceptEnv LANG
PrintMotd no
PrintLastLog no
UseDNS no
LogLevel VERBOSE
EOF
        echo "PidFile $STATE/sshd.pidfile"
    } >"$cfg.in"
    # OpenSSH >= 9.8 penalises sources that fail or disconnect early; our negative tests do.
    if "$SSHD" -t -f <(sed 's/@PORT@/2222/' "$cfg.in"; echo "PerSourcePenalties no") 2>/dev/null; then
        echo "PerSourcePenalties no" >>"$cfg.in"
    fi
    # sshd reads its config at start only: a wrapper substitutes the port.
    cat >"$STATE/run-sshd.sh" <<EOF
#!/bin/sh
sed "s/@PORT@/\$1/" '$cfg.in' >'$cfg'
exec $SSHD -D -e -f '$cfg' -E '$STATE/sshd.log'
EOF
    chmod 755 "$STATE/run-sshd.sh"
    start_server sshd "$STATE/run-sshd.sh" @PORT@
    local sshd_pid=$SERVER_PID sshd_port=$SERVER_PORT

    # dropbear
    local dargs=(-F -E -p "127.0.0.1:@PORT@")
    ((v6)) && dargs+=(-p "[::1]:@PORT@")
    dargs+=(-r "$STATE/dropbear_host_rsa" -r "$STATE/dropbear_host_dss" -P "$STATE/dropbear.pidfile")
    start_server dropbear "$DROPBEAR" "${dargs[@]}"
    local db_port=$SERVER_PORT

    # sshd_split (exttest.dual_stack): the same settings and host keys, 127.0.0.1:P4 and
    # [::1]:P6 only. Password logins only (no authorized_keys lines of its own).
    local split4= split6=
    if ((v6)); then
        local scfg=$STATE/sshd_split_config
        {
            grep -vE '^(Port|ListenAddress|PidFile) ' "$cfg.in"
            echo "ListenAddress 127.0.0.1:@PORT@"
            echo "ListenAddress [::1]:@PORT6@"
            echo "PidFile $STATE/sshd_split.pidfile"
        } >"$scfg.in"
        cat >"$STATE/run-sshd-split.sh" <<EOF
#!/bin/sh
sed -e "s/@PORT@/\$1/" -e "s/@PORT6@/\$2/" '$scfg.in' >'$scfg'
exec $SSHD -D -e -f '$scfg' -E '$STATE/sshd_split.log'
EOF
        chmod 755 "$STATE/run-sshd-split.sh"
        start_server sshd_split "$STATE/run-sshd-split.sh" @PORT@ @PORT6@
        split4=$SERVER_PORT split6=$SERVER_PORT6
    fi

    # User keys → authorized_keys (comment names the sshd pid: stale once it is gone).
    local rsa_pub dsa_pub
    rsa_pub=$(pub_of "$STATE/id_rsa")
    dsa_pub=$(pub_of "$STATE/id_dsa")
    edit_authorized_keys "" "$rsa_pub $TAG$sshd_pid-rsa
$dsa_pub $TAG$sshd_pid-dsa"

    local s_rsa s_dsa d_rsa d_dsa
    s_rsa=$(pub_of "$STATE/sshd_host_rsa")
    s_dsa=$(pub_of "$STATE/sshd_host_dsa")
    d_rsa=$(pub_of "$STATE/dropbear_host_rsa")
    d_dsa=$(pub_of "$STATE/dropbear_host_dss")
    {
        echo "# written by scripts/ctest-servers.sh start; read by c-tests/clitest1"
        echo "SERVERS='sshd dropbear'"
        echo "USERNAME='$TEST_USER'"
        echo "PASSWORD='$TEST_PASSWORD'"
        echo "ADDR4='127.0.0.1'"
        echo "ADDR6='::1'"
        echo "IPV6='$v6'"
        echo "ID_RSA_FILE='$STATE/id_rsa'"
        echo "ID_DSA_FILE='$STATE/id_dsa'"
        echo "ID_RSA_OPENSSH_FILE='$STATE/id_rsa.openssh'"
        echo "SSHD_PORT='$sshd_port'"
        echo "SSHD_LOG='$STATE/sshd.log'"
        echo "SSHD_HOST_RSA_KEY_PUB='$s_rsa'"
        echo "SSHD_HOST_DSA_KEY_PUB='$s_dsa'"
        echo "SSHD_HOST_RSA_FP='$(fp_of "$s_rsa")'"
        echo "SSHD_HOST_DSA_FP='$(fp_of "$s_dsa")'"
        echo "DROPBEAR_PORT='$db_port'"
        echo "DROPBEAR_LOG='$STATE/dropbear.log'"
        echo "DROPBEAR_HOST_RSA_KEY_PUB='$d_rsa'"
        echo "DROPBEAR_HOST_DSA_KEY_PUB='$d_dsa'"
        echo "DROPBEAR_HOST_RSA_FP='$(fp_of "$d_rsa")'"
        echo "DROPBEAR_HOST_DSA_FP='$(fp_of "$d_dsa")'"
        # sshd_split (same host keys as sshd); empty without ::1 on lo.
        echo "SSHD_V4ONLY_PORT='$split4'"
        echo "SSHD_V6ONLY_PORT='$split6'"
        echo "SSHD_SPLIT_LOG='$STATE/sshd_split.log'"
    } >"$STATE/servers.env.tmp"
    chmod 644 "$STATE/servers.env.tmp"
    mv -f "$STATE/servers.env.tmp" "$STATE/servers.env"
    log "ready: $STATE/servers.env"
}

status() {
    local name pid
    for name in sshd dropbear; do
        pid=$(cat "$STATE/$name.pid" 2>/dev/null) || return 1
        ours "$pid" || return 1
    done
}

case $ACTION in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) usage ;;
esac
