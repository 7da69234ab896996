#!/usr/bin/env bash
# sshd-serve-shim.sh — stands in for `examples/serve` (issue 11) until it exists, so that the
# real-client matrix (tests/interop_server.rs) can be built and checked against OpenSSH's sshd.
#
# Same CLI as serve:
#   sshd-serve-shim.sh --listen 127.0.0.1:PORT --host-key FILE --authorized-keys FILE
#                      [--password-file FILE] [--sftp-server PATH]
#
# It execs /usr/sbin/sshd in the foreground (same pid, so whoever started it owns the listener
# and can kill it) with a configuration generated on its command line: `-f /dev/null` (no
# config file, so nothing to leave behind) and one `-o` per setting.
#
# Differences from serve that the matrix must know about:
#   * sshd checks passwords against the system's accounts (UsePAM no: /etc/shadow), not
#     against --password-file. The file is read only to decide whether password logins are
#     on; its lines are expected to name a real account with its real password (the test uses
#     the `sshbtest` account of scripts/install-deps.sh), otherwise password cases fail.
#   * commands run as the logged-in account (serve runs them as the user it runs as) with
#     that account's login shell and home directory as working directory.
set -euo pipefail

die() { printf 'sshd-serve-shim: %s\n' "$*" >&2; exit 2; }

listen='' host_key='' authorized_keys='' password_file='' sftp_server=''
while (($#)); do
    case $1 in
        --listen) listen=${2:?}; shift 2 ;;
        --host-key) host_key=${2:?}; shift 2 ;;
        --authorized-keys) authorized_keys=${2:?}; shift 2 ;;
        --password-file) password_file=${2:?}; shift 2 ;;
        --sftp-server) sftp_server=${2:?}; shift 2 ;;
        *) die "unknown argument: $1" ;;
    esac
done
[[ -n $listen && -n $host_key && -n $authorized_keys ]] ||
    die "usage: $0 --listen ADDR:PORT --host-key FILE --authorized-keys FILE [--password-file FILE] [--sftp-server PATH]"
[[ -r $host_key ]] || die "cannot read host key $host_key"
[[ -r $authorized_keys ]] || die "cannot read authorized keys $authorized_keys"
# sshd wants absolute paths (it re-executes itself and may chdir).
host_key=$(realpath "$host_key")
authorized_keys=$(realpath "$authorized_keys")

password=no
if [[ -n $password_file ]]; then
    [[ -r $password_file ]] || die "cannot read password file $password_file"
    password=yes
    printf 'sshd-serve-shim: password logins are checked by sshd against system accounts, not %s\n' \
        "$password_file" >&2
fi

opts=(
    -o "ListenAddress=$listen"
    -o "AuthorizedKeysFile=$authorized_keys"
    -o "AuthorizedKeysCommand=none"
    -o "PubkeyAuthentication=yes"
    -o "PasswordAuthentication=$password"
    -o "KbdInteractiveAuthentication=no"
    -o "PermitEmptyPasswords=no"
    -o "PermitRootLogin=yes"
    -o "StrictModes=no"
    -o "UsePAM=no"
    -o "PrintMotd=no"
    -o "PrintLastLog=no"
    -o "UseDNS=no"
    -o "PidFile=none"
    -o "LogLevel=DEBUG1"
    # The matrix runs several clients at once; sshd's default 10:30:100 would drop some.
    -o "MaxStartups=100"
    -o "X11Forwarding=no"
)
if [[ -n $sftp_server ]]; then
    opts+=(-o "Subsystem=sftp $sftp_server")
fi
exec /usr/sbin/sshd -D -e -f /dev/null -h "$host_key" "${opts[@]}"
