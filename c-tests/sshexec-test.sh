#!/usr/bin/env bash
# sshexec-test.sh — examples/sshexec's OpenSSH-style options against the CTest fixture's sshd.
#
#   sshexec-test.sh SSHEXEC CASE     (CLITEST1_CONFIG names the fixture's servers.env)
#
# Cases: known_hosts (accept-new then yes; ssh-keygen -F finds the entry; HashKnownHosts),
# bad_option (an unknown -o is an error naming it), env_pty_verbose (-o SetEnv, -t, -v),
# forward (-L carries 64 MiB both ways through sshd to a local echo server), stdin (a file and a
# pipe uploaded byte-exact, echoed back; a remote command that exits during an upload).
# Exit status: 0 pass, 1 fail, 77 skip.
set -uo pipefail
SSHEXEC=$1
CASE=$2
[[ -n ${CLITEST1_CONFIG:-} && -r $CLITEST1_CONFIG ]] || { echo "CLITEST1_CONFIG not set"; exit 77; }
# shellcheck disable=SC1090
source "$CLITEST1_CONFIG"
T=$(mktemp -d /tmp/sshexec-test.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$T"' EXIT
printf '%s\n' "$PASSWORD" >"$T/pw"
BASE=(-p "$SSHD_PORT" -l "$USERNAME" -w "$T/pw")
fail() { echo "FAIL sshexec.$CASE: $*"; exit 1; }

case $CASE in
known_hosts)
    KH=$T/known_hosts
    out=$("$SSHEXEC" "${BASE[@]}" -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$KH" 127.0.0.1 echo x 2>"$T/err")
    [[ $? == 255 && $(cat "$T/err") == *"host key is known"* ]] || fail "unknown host accepted under yes: $(cat "$T/err")"
    out=$("$SSHEXEC" "${BASE[@]}" -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile="$KH" 127.0.0.1 echo first) ||
        fail "accept-new"
    [[ $out == first ]] || fail "output $out"
    ssh-keygen -F "[127.0.0.1]:$SSHD_PORT" -f "$KH" >/dev/null || fail "ssh-keygen -F does not find the entry"
    out=$("$SSHEXEC" "${BASE[@]}" -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$KH" 127.0.0.1 echo again) ||
        fail "known host refused"
    [[ $out == again ]] || fail "output $out"
    "$SSHEXEC" "${BASE[@]}" -o StrictHostKeyChecking=accept-new -o HashKnownHosts=yes -o UserKnownHostsFile="$T/hashed" \
        127.0.0.1 true || fail "hashed accept-new"
    grep -q '^|1|' "$T/hashed" || fail "no hashed entry: $(cat "$T/hashed")"
    ssh-keygen -F "[127.0.0.1]:$SSHD_PORT" -f "$T/hashed" >/dev/null || fail "ssh-keygen -F does not find the hashed entry"
    ;;
bad_option)
    "$SSHEXEC" "${BASE[@]}" -o BogusOption=1 127.0.0.1 true 2>"$T/err"
    rc=$?
    [[ $rc == 255 && $(cat "$T/err") == *BogusOption* ]] || fail "rc $rc, stderr $(cat "$T/err")"
    "$SSHEXEC" "${BASE[@]}" -o StrictHostKeyChecking=maybe 127.0.0.1 true 2>"$T/err"
    [[ $? == 255 && $(cat "$T/err") == *maybe* ]] || fail "bad StrictHostKeyChecking value: $(cat "$T/err")"
    "$SSHEXEC" "${BASE[@]}" -o Ciphers=rot13 127.0.0.1 true 2>"$T/err"
    [[ $? == 255 && $(cat "$T/err") == *rot13* ]] || fail "unknown cipher: $(cat "$T/err")"
    ;;
env_pty_verbose)
    out=$("$SSHEXEC" "${BASE[@]}" -t -v -o SetEnv=LANG=C.UTF-8 -o ServerAliveInterval=5 -o ConnectTimeout=5 \
        127.0.0.1 'echo "lang=$LANG"; tty' 2>"$T/err" </dev/null)
    rc=$?
    [[ $rc == 0 ]] || fail "rc $rc: $(cat "$T/err")"
    [[ $out == *"lang=C.UTF-8"* && $out == *"/dev/pts/"* ]] || fail "output: $out"
    grep -q "info: authenticated as" "$T/err" || fail "no log line: $(cat "$T/err")"
    grep -q "kex .*strict kex on" "$T/err" || fail "no info line: $(cat "$T/err")"
    ;;
forward)
    EPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    LPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    python3 - "$EPORT" <<'EOF' &
import socket, sys
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1]))); l.listen(1)
c, _ = l.accept()
while True:
    b = c.recv(1 << 16)
    if not b:
        break
    c.sendall(b)
c.shutdown(socket.SHUT_WR)
EOF
    sleep 0.3
    "$SSHEXEC" "${BASE[@]}" -L "$LPORT:127.0.0.1:$EPORT" 127.0.0.1 'sleep 60' </dev/null &
    python3 - "$LPORT" <<'EOF' || fail "64 MiB through -L"
import hashlib, socket, sys, threading, time
port = int(sys.argv[1])
for _ in range(100):
    try:
        s = socket.create_connection(("127.0.0.1", port)); break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("no listener")
size = 64 << 20
block = bytes(range(256)) * 256
want = hashlib.sha256()
def send():
    sent = 0
    while sent < size:
        s.sendall(block); want.update(block); sent += len(block)
    s.shutdown(socket.SHUT_WR)
t = threading.Thread(target=send); t.start()
got, n = hashlib.sha256(), 0
s.settimeout(60)
while True:
    b = s.recv(1 << 16)
    if not b:
        break
    got.update(b); n += len(b)
t.join()
print(f"  {n} bytes echoed through -L")
sys.exit(0 if n == size and got.digest() == want.digest() else f"got {n} bytes, digest {'ok' if got.digest() == want.digest() else 'differs'}")
EOF
    ;;
stdin)
    # stdin both ways sshexec reads it: a regular file (sendfile() into db_stdin_stdout) and a
    # pipe (read() + send()); 20 MiB + 17 bytes of random data, checked by sha256 remotely and
    # echoed back by `cat`; a remote command that exits without reading must not hang us.
    head -c 20971537 /dev/urandom >"$T/in.bin"
    want=$(sha256sum <"$T/in.bin" | cut -d' ' -f1)
    got=$("$SSHEXEC" "${BASE[@]}" 127.0.0.1 sha256sum <"$T/in.bin" | cut -d' ' -f1)
    [[ $got == "$want" ]] || fail "file upload: remote sha256 $got, want $want"
    got=$(cat "$T/in.bin" | "$SSHEXEC" "${BASE[@]}" 127.0.0.1 sha256sum | cut -d' ' -f1)
    [[ $got == "$want" ]] || fail "pipe upload: remote sha256 $got, want $want"
    got=$("$SSHEXEC" "${BASE[@]}" 127.0.0.1 cat <"$T/in.bin" | sha256sum | cut -d' ' -f1)
    [[ $got == "$want" ]] || fail "file echoed by cat: sha256 $got, want $want"
    : >"$T/empty"
    out=$("$SSHEXEC" "${BASE[@]}" 127.0.0.1 'wc -c' <"$T/empty")
    [[ $out == 0 ]] || fail "empty file: remote wc -c says $out"
    timeout 60 "$SSHEXEC" "${BASE[@]}" 127.0.0.1 'head -c 10 >/dev/null; exit 3' <"$T/in.bin"
    rc=$?
    [[ $rc == 3 ]] || fail "remote exiting during the upload: rc $rc, want 3"
    ;;
*) echo "unknown case $CASE"; exit 1 ;;
esac
echo "PASS sshexec.$CASE"
