#!/usr/bin/env bash
# install-deps.sh — prepare a Debian 12 machine for sshbridge's integration tests.
#
# Idempotent; meant to run as root (as CI does). When not root it uses sudo if available.
#   * installs the Debian packages the tests and benchmarks need (apt-get update only when
#     something is missing);
#   * never leaves a system sshd/dropbear running that this script caused to start;
#   * creates the test account `sshbtest` (password login enabled) and its ~/.ssh;
#   * creates /run/sshd (sshd's privilege-separation directory).
#
# The account name and password are mirrored in tests/support/mod.rs (USER, PASSWORD).
set -euo pipefail

readonly TEST_USER=sshbtest
readonly TEST_HOME=/home/sshbtest
readonly TEST_PASSWORD='sshb-Test-pw1'
readonly PACKAGES=(
    openssh-server openssh-client dropbear-bin tinysshd ucspi-tcp
    cmake libssh2-1-dev valgrind pkg-config cbindgen
)

log() { printf 'install-deps: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Run a command as root: directly when we are root, else through sudo.
if [[ $(id -u) -eq 0 ]]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    die "must run as root (or with sudo available)"
fi
as_root() { "${SUDO[@]}" "$@"; }

# True if the Debian package $1 is installed.
is_installed() {
    [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true) == "install ok installed" ]]
}

# True if apt knows an installation candidate for package $1.
has_candidate() {
    local cand
    cand=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2 }')
    [[ -n $cand && $cand != "(none)" ]]
}

# True if something listens on TCP port 22 (any address).
port22_busy() {
    ss -Hltn 2>/dev/null | awk '{ print $4 }' | grep -Eq '[:.]22$'
}

# ---------------------------------------------------------------------------
# 1. Debian packages
# ---------------------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
    is_installed "$p" || missing+=("$p")
done

had_sshd=0
is_installed openssh-server && had_sshd=1

if ((${#missing[@]} > 0)); then
    log "missing packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq

    # cbindgen may be absent from the configured suites; fall back to cargo below.
    want=()
    for p in "${missing[@]}"; do
        if [[ $p == cbindgen ]] && ! has_candidate cbindgen; then
            log "Debian has no cbindgen candidate; will use cargo install"
            continue
        fi
        want+=("$p")
    done

    # Keep maintainer scripts from starting daemons (sshd, dropbear): a policy-rc.d
    # that answers 101 ("action forbidden"). Only installed if none exists, and removed after.
    added_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        as_root sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
        added_policy=1
        trap 'as_root rm -f /usr/sbin/policy-rc.d' EXIT
    fi

    if ((${#want[@]} > 0)); then
        as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends "${want[@]}"
    fi

    if ((added_policy)); then
        as_root rm -f /usr/sbin/policy-rc.d
        trap - EXIT
    fi
fi

# cbindgen fallback (builds from crates.io; installed for the invoking user).
if ! command -v cbindgen >/dev/null 2>&1; then
    command -v cargo >/dev/null 2>&1 || die "cbindgen missing and cargo not found"
    log "installing cbindgen with cargo"
    cargo install cbindgen --locked
fi

# If installing openssh-server here started a system sshd anyway (no policy-rc.d
# honoured, e.g. systemd socket activation), stop and disable it: tests run their own
# servers on high ports and nothing should listen on port 22 because of us.
if ((had_sshd == 0)) && port22_busy; then
    log "a system SSH service listens on port 22 after install; stopping it"
    if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
        as_root systemctl disable --now ssh.service ssh.socket dropbear.service 2>/dev/null || true
    else
        as_root service ssh stop 2>/dev/null || true
        as_root service dropbear stop 2>/dev/null || true
    fi
fi

# ---------------------------------------------------------------------------
# 2. The test account
# ---------------------------------------------------------------------------
if ! id -u "$TEST_USER" >/dev/null 2>&1; then
    log "creating user $TEST_USER"
    as_root useradd --create-home --home-dir "$TEST_HOME" --shell /bin/sh "$TEST_USER"
fi
# (Re)set the password every time: this also unlocks the account ("!" in /etc/shadow),
# which sshd (UsePAM no) and dropbear treat as "no login".
printf '%s:%s\n' "$TEST_USER" "$TEST_PASSWORD" | as_root chpasswd
as_root usermod --unlock --expiredate '' "$TEST_USER" 2>/dev/null || true
as_root chage --maxdays -1 --inactive -1 "$TEST_USER" 2>/dev/null || true

# Home and ~/.ssh: owned by the user, not group/world writable (dropbear and
# tinysshd check this; sshd runs with StrictModes no but keep it tidy anyway).
as_root mkdir -p "$TEST_HOME/.ssh"
as_root touch "$TEST_HOME/.ssh/authorized_keys"
as_root chown "$TEST_USER:" "$TEST_HOME" "$TEST_HOME/.ssh" "$TEST_HOME/.ssh/authorized_keys"
as_root chmod 755 "$TEST_HOME"
as_root chmod 700 "$TEST_HOME/.ssh"
as_root chmod 600 "$TEST_HOME/.ssh/authorized_keys"

# ---------------------------------------------------------------------------
# 3. sshd's privilege-separation directory (lives on tmpfs, so recreate every time)
# ---------------------------------------------------------------------------
as_root mkdir -p /run/sshd
as_root chmod 755 /run/sshd

log "ok"
