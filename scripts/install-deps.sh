#!/usr/bin/env bash
# install-deps.sh — prepare a Debian 12 machine for sshbridge's integration tests.
#
# Idempotent; meant to run as root (as CI does). When not root it uses sudo if available.
#   * installs the Debian packages the tests and benchmarks need (apt-get update only when
#     something is missing); libnss-wrapper gives exttest.dual_stack a host name with two
#     addresses (LD_PRELOAD=libnss_wrapper.so, NSS_WRAPPER_HOSTS);
#   * never leaves a system sshd/dropbear running that this script caused to start;
#   * creates the test account `sshbtest` (password login enabled) and its ~/.ssh;
#   * creates /run/sshd (sshd's privilege-separation directory);
#   * fetches OpenSSH 10.0 (openssh-server/-client/-sftp-server 1:10.0p1-7~bpo12+1) from
#     bookworm-backports through a private apt source list and state directory (the system's
#     apt configuration is not touched; the mirror is the one the system already uses) and
#     unpacks it with dpkg-deb -x into /opt/openssh-10, beside the system's OpenSSH 9.2, which
#     stays (10.0 has no DSA). Its sshd runs with SshdSessionPath/SshdAuthPath pointing there;
#   * builds Dropbear 2025.89 (ML-KEM and sntrup761 on by default) from Debian trixie's source
#     package (fetched the same private way, deb-src) into /opt/dropbear-2025: the trixie
#     binaries need a newer glibc than bookworm's. About 30 s of CPU;
#   * creates a Python venv in /opt/sshbridge-venv with paramiko and asyncssh from PyPI (pinned
#     versions), clients for the server role's interop matrix (tests/interop_server.rs).
#
# The account name and password are mirrored in tests/support/mod.rs (USER, PASSWORD).
set -euo pipefail

readonly TEST_USER=sshbtest
readonly TEST_HOME=/home/sshbtest
readonly TEST_PASSWORD='sshb-Test-pw1'
readonly PACKAGES=(
    openssh-server openssh-client dropbear-bin tinysshd ucspi-tcp
    cmake libssh2-1-dev valgrind pkg-config cbindgen
    putty-tools libssh-dev python3-venv git
    libnss-wrapper
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

# ---------------------------------------------------------------------------
# 4. OpenSSH 10.0 from bookworm-backports, unpacked privately (not installed)
# ---------------------------------------------------------------------------
readonly OPENSSH10_VERSION='1:10.0p1-7~bpo12+1'
readonly OPENSSH10_DIR=/opt/openssh-10
readonly OPENSSH10_PACKAGES=(openssh-server openssh-client openssh-sftp-server)
readonly APT_PRIVATE=/var/cache/sshbridge-apt
readonly DROPBEAR25_VERSION='2025.89-1~deb13u1'
readonly DROPBEAR25_DIR=/opt/dropbear-2025

openssh10_ok() {
    [[ -x $OPENSSH10_DIR/usr/sbin/sshd && -x $OPENSSH10_DIR/usr/bin/ssh \
        && -x $OPENSSH10_DIR/usr/lib/openssh/sshd-session \
        && $(cat "$OPENSSH10_DIR/VERSION" 2>/dev/null) == "$OPENSSH10_VERSION" ]]
}

# The Debian mirror the system's own apt sources use for bookworm (deb822 or one-line
# format), so that no mirror is hard-coded here.
debian_mirror() {
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        # deb822: the URIs of the first stanza whose Suites include "bookworm".
        uri=$(awk '
            /^[[:space:]]*$/ { if (suite && uris != "") { print uris; exit } suite = 0; uris = ""; next }
            /^URIs:/ { uris = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm") suite = 1 }
            END { if (suite && uris != "") print uris }' "$f" | head -n1)
        [[ -n $uri ]] && { printf '%s\n' "${uri%/}"; return 0; }
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        # one-line: deb [options] URI bookworm components
        uri=$(sed -E 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }')
        [[ -n $uri ]] && { printf '%s\n' "${uri%/}"; return 0; }
    done
    return 1
}

if ! openssh10_ok; then
    mirror=$(debian_mirror) || die "cannot find the bookworm mirror in the system's apt sources"
    log "fetching OpenSSH $OPENSSH10_VERSION from $mirror bookworm-backports into $OPENSSH10_DIR"
    as_root mkdir -p "$APT_PRIVATE/lists/partial" "$APT_PRIVATE/cache/archives/partial" \
        "$APT_PRIVATE/parts" "$APT_PRIVATE/debs"
    printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s bookworm-backports main\n' \
        "$mirror" | as_root tee "$APT_PRIVATE/sources.list" >/dev/null
    apt_private=(
        -o "Dir::Etc::SourceList=$APT_PRIVATE/sources.list"
        -o "Dir::Etc::SourceParts=$APT_PRIVATE/parts"
        -o "Dir::State::Lists=$APT_PRIVATE/lists"
        -o "Dir::Cache=$APT_PRIVATE/cache"
        -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
    )
    as_root apt-get "${apt_private[@]}" update -qq
    as_root rm -f "$APT_PRIVATE"/debs/*.deb
    # apt downloads as user _apt (sandbox) when that user can write the target directory.
    id -u _apt >/dev/null 2>&1 && as_root chown _apt "$APT_PRIVATE/debs"
    (cd "$APT_PRIVATE/debs" && as_root apt-get "${apt_private[@]}" download -qq \
        "${OPENSSH10_PACKAGES[@]/%/=$OPENSSH10_VERSION}")
    as_root rm -rf "$OPENSSH10_DIR.new"
    as_root mkdir -p "$OPENSSH10_DIR.new"
    for deb in "$APT_PRIVATE"/debs/*.deb; do
        as_root dpkg-deb -x "$deb" "$OPENSSH10_DIR.new"
    done
    printf '%s\n' "$OPENSSH10_VERSION" | as_root tee "$OPENSSH10_DIR.new/VERSION" >/dev/null
    as_root rm -rf "$OPENSSH10_DIR"
    as_root mv "$OPENSSH10_DIR.new" "$OPENSSH10_DIR"
    openssh10_ok || die "OpenSSH 10.0 unpacked incompletely into $OPENSSH10_DIR"
fi
# Its binaries must find their libraries on this system (bookworm's).
for bin in usr/sbin/sshd usr/lib/openssh/sshd-session usr/lib/openssh/sshd-auth usr/bin/ssh; do
    [[ -x $OPENSSH10_DIR/$bin ]] || continue
    if ldd "$OPENSSH10_DIR/$bin" | grep -q 'not found'; then
        die "$OPENSSH10_DIR/$bin: missing libraries: $(ldd "$OPENSSH10_DIR/$bin" | grep 'not found' | tr -s ' \n\t' ' ')"
    fi
done

# ---------------------------------------------------------------------------------------
# 5. Dropbear 2025.89 built from Debian trixie's source package (private apt, deb-src)
# ---------------------------------------------------------------------------------------
dropbear25_ok() {
    [[ -x $DROPBEAR25_DIR/dropbear && -x $DROPBEAR25_DIR/dropbearkey \
        && $(cat "$DROPBEAR25_DIR/VERSION" 2>/dev/null) == "$DROPBEAR25_VERSION" ]]
}
if ! dropbear25_ok; then
    command -v gcc >/dev/null && command -v make >/dev/null || die "building Dropbear needs gcc and make"
    mirror=$(debian_mirror) || die "cannot find the Debian mirror in the system's apt sources"
    src=$APT_PRIVATE/dropbear-src
    log "building Dropbear $DROPBEAR25_VERSION from $mirror trixie (source) into $DROPBEAR25_DIR"
    as_root mkdir -p "$src/lists/partial" "$src/cache/archives/partial" "$src/parts" "$src/dl"
    printf 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s trixie main\n' \
        "$mirror" | as_root tee "$src/sources.list" >/dev/null
    apt_src=(
        -o "Dir::Etc::SourceList=$src/sources.list"
        -o "Dir::Etc::SourceParts=$src/parts"
        -o "Dir::State::Lists=$src/lists"
        -o "Dir::Cache=$src/cache"
        -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
    )
    as_root apt-get "${apt_src[@]}" update -qq
    as_root rm -rf "$src/dl" "$src/build"
    as_root mkdir -p "$src/dl" "$src/build"
    id -u _apt >/dev/null 2>&1 && as_root chown _apt "$src/dl"
    (cd "$src/dl" && as_root apt-get "${apt_src[@]}" source --download-only -qq "dropbear=$DROPBEAR25_VERSION")
    # The upstream tarball is all we build; Debian's only patch touches upstream's test suite.
    as_root tar -xjf "$src"/dl/dropbear_"${DROPBEAR25_VERSION%%-*}".orig.tar.bz2 -C "$src/build" --strip-components=1
    (cd "$src/build" && as_root ./configure -q --disable-pam --disable-zlib --disable-lastlog \
        --disable-utmp --disable-utmpx --disable-wtmp --disable-wtmpx >/dev/null &&
        as_root make -s -j"$(nproc)" PROGRAMS="dropbear dropbearkey" >/dev/null) ||
        die "Dropbear $DROPBEAR25_VERSION did not build (see $src/build)"
    as_root rm -rf "$DROPBEAR25_DIR"
    as_root mkdir -p "$DROPBEAR25_DIR"
    as_root install -m 755 "$src/build/dropbear" "$src/build/dropbearkey" "$DROPBEAR25_DIR/"
    printf '%s\n' "$DROPBEAR25_VERSION" | as_root tee "$DROPBEAR25_DIR/VERSION" >/dev/null
    dropbear25_ok || die "Dropbear $DROPBEAR25_VERSION missing after the build"
fi

# ---------------------------------------------------------------------------------------
# 6. Python clients for the server-role matrix: paramiko and asyncssh in a private venv
# ---------------------------------------------------------------------------------------
readonly VENV_DIR=/opt/sshbridge-venv
readonly VENV_REQUIREMENTS='paramiko==4.0.0 asyncssh==2.21.1'
venv_ok() {
    [[ -x $VENV_DIR/bin/python && $(cat "$VENV_DIR/REQUIREMENTS" 2>/dev/null) == "$VENV_REQUIREMENTS" ]] &&
        "$VENV_DIR/bin/python" -c 'import paramiko, asyncssh' 2>/dev/null
}
if ! venv_ok; then
    log "creating $VENV_DIR with $VENV_REQUIREMENTS"
    as_root rm -rf "$VENV_DIR.new"
    # Debian's python3 (python3-venv), not whatever python3 comes first in PATH.
    as_root /usr/bin/python3 -m venv "$VENV_DIR.new"
    # shellcheck disable=SC2086 # the pins are separate words
    as_root "$VENV_DIR.new/bin/pip" install -q --disable-pip-version-check $VENV_REQUIREMENTS ||
        die "pip could not install $VENV_REQUIREMENTS"
    printf '%s\n' "$VENV_REQUIREMENTS" | as_root tee "$VENV_DIR.new/REQUIREMENTS" >/dev/null
    # A venv records its own path: build it under the final name's twin, then swap.
    as_root rm -rf "$VENV_DIR"
    as_root mv "$VENV_DIR.new" "$VENV_DIR"
    venv_ok || die "$VENV_DIR does not import paramiko and asyncssh"
fi

log "ok"
