//! The extended C API (`include/sshbridge.h`): per-connection options, connecting by host name,
//! many commands and TCP forwards (RFC 4254 sections 6.5, 7.2) over one connection, a report of
//! what was negotiated and an error class. Same conventions as the drop-in API: every function
//! is NULL-safe and panic-safe; `int` results are 0 (or a count) on success and a negative
//! `SSHBRIDGE_E_*` code otherwise; options are copied at connect, so one options object can
//! serve many connections and be freed right after.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::os::fd::{IntoRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use super::{
    attach_command, c_bytes, c_string, config_from, cyg_dropbear_authenticate, cyg_dropbear_cli_handle, drop_in_settings,
    set_error, set_error_of, ChannelSetup, Connection, CYG_DROPBEAR_MAX_ERROR,
};
use crate::auth::Credential;
use crate::error::Error;
use crate::keys::{PrivateKey, PublicKey};
use crate::logging::LogSink;
use crate::runtime::config::Config;
use crate::runtime::forward::StreamBridge;
use crate::runtime::session::Session;
use crate::trust::{HostKeyPolicy, KnownHosts};
#[cfg(feature = "known-hosts")]
use crate::trust::Strict;

/// Results of the extended API: 0 success, negative an error class (also `sshbridge_error_code`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum sshbridge_code {
    /// Success.
    SSHBRIDGE_OK = 0,
    /// A NULL or unusable argument.
    SSHBRIDGE_E_INVALID = -1,
    /// The server's host key differs from the one known or pinned for it.
    SSHBRIDGE_E_HOSTKEY_CHANGED = -2,
    /// The server's host key is not known (strict checking).
    SSHBRIDGE_E_HOSTKEY_UNKNOWN = -3,
    /// No authentication method succeeded.
    SSHBRIDGE_E_AUTH = -4,
    /// A deadline passed (connect, handshake, keepalive: the server stopped answering).
    SSHBRIDGE_E_TIMEOUT = -5,
    /// The server refused something: a channel, a command, an environment variable, a pty; or it
    /// lacks something the options require (strict key exchange).
    SSHBRIDGE_E_REFUSED = -6,
    /// The server broke the protocol, or disconnected.
    SSHBRIDGE_E_PROTOCOL = -7,
    /// The TCP connection could not be made or was lost.
    SSHBRIDGE_E_CONNECT = -8,
    /// A private or public key could not be used.
    SSHBRIDGE_E_KEY = -9,
    /// No algorithm in common with the server.
    SSHBRIDGE_E_ALGORITHM = -10,
    /// A cryptographic check failed (MAC, signature).
    SSHBRIDGE_E_CRYPTO = -11,
    /// A bug in this library.
    SSHBRIDGE_E_INTERNAL = -12,
    /// Not available in this build or setup.
    SSHBRIDGE_E_UNSUPPORTED = -13,
    /// The server's host key is marked @revoked in known_hosts.
    SSHBRIDGE_E_HOSTKEY_REVOKED = -14,
    /// The host key was refused otherwise (unusable, or by a verifier).
    SSHBRIDGE_E_HOSTKEY = -15,
}

/// `sshbridge_options_set_known_hosts` modes.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum sshbridge_hostkey_mode {
    SSHBRIDGE_HOSTKEY_STRICT = 1,
    SSHBRIDGE_HOSTKEY_ACCEPT_NEW = 2,
    SSHBRIDGE_HOSTKEY_ACCEPT_ANY = 3,
}

/// `sshbridge_options_set_algorithms` kinds.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum sshbridge_alg_kind {
    SSHBRIDGE_ALG_KEX = 1,
    SSHBRIDGE_ALG_HOSTKEY = 2,
    SSHBRIDGE_ALG_CIPHER = 3,
    SSHBRIDGE_ALG_MAC = 4,
}

// The same values as plain ints for the Rust side.
pub const SSHBRIDGE_OK: c_int = sshbridge_code::SSHBRIDGE_OK as c_int;
pub const SSHBRIDGE_E_INVALID: c_int = sshbridge_code::SSHBRIDGE_E_INVALID as c_int;
pub const SSHBRIDGE_E_HOSTKEY_CHANGED: c_int = sshbridge_code::SSHBRIDGE_E_HOSTKEY_CHANGED as c_int;
pub const SSHBRIDGE_E_HOSTKEY_UNKNOWN: c_int = sshbridge_code::SSHBRIDGE_E_HOSTKEY_UNKNOWN as c_int;
pub const SSHBRIDGE_E_AUTH: c_int = sshbridge_code::SSHBRIDGE_E_AUTH as c_int;
pub const SSHBRIDGE_E_TIMEOUT: c_int = sshbridge_code::SSHBRIDGE_E_TIMEOUT as c_int;
pub const SSHBRIDGE_E_REFUSED: c_int = sshbridge_code::SSHBRIDGE_E_REFUSED as c_int;
pub const SSHBRIDGE_E_PROTOCOL: c_int = sshbridge_code::SSHBRIDGE_E_PROTOCOL as c_int;
pub const SSHBRIDGE_E_CONNECT: c_int = sshbridge_code::SSHBRIDGE_E_CONNECT as c_int;
pub const SSHBRIDGE_E_KEY: c_int = sshbridge_code::SSHBRIDGE_E_KEY as c_int;
pub const SSHBRIDGE_E_ALGORITHM: c_int = sshbridge_code::SSHBRIDGE_E_ALGORITHM as c_int;
pub const SSHBRIDGE_E_CRYPTO: c_int = sshbridge_code::SSHBRIDGE_E_CRYPTO as c_int;
pub const SSHBRIDGE_E_INTERNAL: c_int = sshbridge_code::SSHBRIDGE_E_INTERNAL as c_int;
pub const SSHBRIDGE_E_UNSUPPORTED: c_int = sshbridge_code::SSHBRIDGE_E_UNSUPPORTED as c_int;
pub const SSHBRIDGE_E_HOSTKEY_REVOKED: c_int = sshbridge_code::SSHBRIDGE_E_HOSTKEY_REVOKED as c_int;
pub const SSHBRIDGE_E_HOSTKEY: c_int = sshbridge_code::SSHBRIDGE_E_HOSTKEY as c_int;

/// The class of an error.
pub fn code_of(e: &Error) -> c_int {
    match e {
        Error::BadArgument(_) => SSHBRIDGE_E_INVALID,
        Error::HostKeyRejected(m) if m.contains("REVOKED") => SSHBRIDGE_E_HOSTKEY_REVOKED,
        Error::HostKeyRejected(m) if m.contains("CHANGED") || m.contains("mismatch") => SSHBRIDGE_E_HOSTKEY_CHANGED,
        Error::HostKeyRejected(m) if m.contains("host key is known for") => SSHBRIDGE_E_HOSTKEY_UNKNOWN,
        Error::HostKeyRejected(_) => SSHBRIDGE_E_HOSTKEY,
        Error::AuthFailed { .. } => SSHBRIDGE_E_AUTH,
        Error::Timeout(_) => SSHBRIDGE_E_TIMEOUT,
        Error::Refused(_) | Error::ChannelOpenFailed { .. } | Error::ChannelRequestFailed(_) => SSHBRIDGE_E_REFUSED,
        Error::Protocol(_) | Error::VersionNotSupported(_) | Error::StrictKex(_) | Error::Disconnected { .. } => {
            SSHBRIDGE_E_PROTOCOL
        }
        Error::ConnectionClosed(_) | Error::Io { .. } => SSHBRIDGE_E_CONNECT,
        Error::Key(_) => SSHBRIDGE_E_KEY,
        Error::NoCommonAlgorithm { .. } => SSHBRIDGE_E_ALGORITHM,
        Error::Crypto(_) => SSHBRIDGE_E_CRYPTO,
        Error::Internal(_) => SSHBRIDGE_E_INTERNAL,
    }
}

/// The error class rides in the last byte of `db_error` (the text stops before it), so the
/// handle stays the eCos structure and a copy of it keeps its class.
pub(crate) fn store_code(h: &mut cyg_dropbear_cli_handle, code: c_int) {
    if let Some(last) = h.db_error.last_mut() {
        *last = code.unsigned_abs().min(127) as c_char;
    }
}

/// Per-connection settings for `sshbridge_connect` and `sshbridge_conn_open`.
#[derive(Default)]
pub struct sshbridge_options {
    identities: Vec<Credential>,
    host_keys: Vec<PublicKey>,
    env: Vec<(String, String)>,
    pty: Option<(String, u32, u32)>,
    connect: Option<Duration>,
    handshake: Option<Duration>,
    close_wait: Option<Duration>,
    keepalive: Option<(Option<Duration>, u32)>,
    algorithms: [Option<String>; 4],
    log: Option<LogSink>,
    require_strict_kex: bool,
    known_hosts: Option<KnownHosts>,
    hash_known_hosts: bool,
}

/// One SSH connection for many commands and forwards.
pub struct sshbridge_conn {
    session: Session,
    setup: ChannelSetup,
    close_wait: Duration,
}

/// Run `f`, turning a panic into `SSHBRIDGE_E_INTERNAL` and an error into its code.
fn guard(f: impl FnOnce() -> Result<c_int, Error>) -> c_int {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => code_of(&e),
        Err(_) => SSHBRIDGE_E_INTERNAL,
    }
}

fn ms(v: c_int) -> Duration {
    Duration::from_millis(u64::from(v.unsigned_abs()))
}

/// A new options object with every setting at its default (NULL only if memory runs out).
#[no_mangle]
pub extern "C" fn sshbridge_options_new() -> *mut sshbridge_options {
    catch_unwind(|| Box::into_raw(Box::<sshbridge_options>::default())).unwrap_or(std::ptr::null_mut())
}

/// Free an options object (NULL is fine).
///
/// # Safety
/// `o` is NULL or came from `sshbridge_options_new` and is freed once.
#[no_mangle]
pub unsafe extern "C" fn sshbridge_options_free(o: *mut sshbridge_options) {
    if !o.is_null() {
        // SAFETY: made by Box::into_raw in sshbridge_options_new, freed once per the contract.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(o) })));
    }
}

/// # Safety
/// `o` is NULL or a live options object not used by another thread during the call.
unsafe fn opts<'a>(o: *mut sshbridge_options) -> Result<&'a mut sshbridge_options, Error> {
    // SAFETY: per the contract.
    unsafe { o.as_mut() }.ok_or_else(|| Error::bad_argument("options is NULL"))
}

/// Pin a host key (`"ssh-ed25519 AAAA..."`, any key type we read). Any number.
///
/// # Safety
/// `o` as for every setter; `line` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sshbridge_options_add_host_key(o: *mut sshbridge_options, line: *const c_char) -> c_int {
    guard(|| {
        // SAFETY: per the contract.
        let (o, line) = unsafe { (opts(o)?, c_string(line, "line")?) };
        let line = line.ok_or_else(|| Error::bad_argument("line is NULL"))?;
        o.host_keys.push(PublicKey::from_openssh_line(&line).map_err(|e| Error::bad_argument(e.to_string()))?);
        Ok(SSHBRIDGE_OK)
    })
}

/// Add a private key (any format we read; `len` 0: NUL-terminated text); `passphrase` may be
/// NULL. Keys are tried in the order added, before the handle's `auth` keys and password.
///
/// # Safety
/// `key` points to `len` bytes (or a NUL-terminated text when `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn sshbridge_options_add_identity(
    o: *mut sshbridge_options,
    key: *const c_char,
    len: c_int,
    passphrase: *const c_char,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract.
        let (o, bytes, pass) = unsafe { (opts(o)?, c_bytes(key, len, "key")?, c_string(passphrase, "passphrase")?) };
        let bytes = bytes.ok_or_else(|| Error::bad_argument("key is NULL"))?;
        let pass = pass.map(zeroize::Zeroizing::new);
        let k = PrivateKey::from_bytes(&bytes, pass.as_ref().map(|p| p.as_bytes()))?;
        o.identities.push(Credential::key(k));
        Ok(SSHBRIDGE_OK)
    })
}

/// Set an environment variable for every command (an `env` request; the server must accept it).
///
/// # Safety
/// Strings are NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn sshbridge_options_set_env(o: *mut sshbridge_options, name: *const c_char, value: *const c_char) -> c_int {
    guard(|| {
        // SAFETY: per the contract.
        let (o, n, v) = unsafe { (opts(o)?, c_string(name, "name")?, c_string(value, "value")?) };
        let n = n.filter(|n| !n.is_empty() && !n.contains('=')).ok_or_else(|| Error::bad_argument("bad variable name"))?;
        o.env.push((n, v.unwrap_or_default()));
        Ok(SSHBRIDGE_OK)
    })
}

/// Ask for a pseudo-terminal of type `term` with `cols` x `rows` characters for every command.
///
/// # Safety
/// `term` is NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn sshbridge_options_set_pty(o: *mut sshbridge_options, term: *const c_char, cols: c_int, rows: c_int) -> c_int {
    guard(|| {
        // SAFETY: per the contract.
        let (o, t) = unsafe { (opts(o)?, c_string(term, "term")?) };
        if cols <= 0 || rows <= 0 {
            return Err(Error::bad_argument("pty size must be positive"));
        }
        o.pty = Some((t.unwrap_or_else(|| "xterm".into()), cols.unsigned_abs(), rows.unsigned_abs()));
        Ok(SSHBRIDGE_OK)
    })
}

/// Timeouts in milliseconds for this connection (negative: the process default of
/// `sshbridge_set_timeouts`; 0 is refused).
///
/// # Safety
/// `o` is a live options object.
#[no_mangle]
pub unsafe extern "C" fn sshbridge_options_set_timeouts(o: *mut sshbridge_options, connect_ms: c_int, handshake_ms: c_int, close_wait_ms: c_int) -> c_int {
    guard(|| {
        // SAFETY: per the contract.
        let o = unsafe { opts(o)? };
        if [connect_ms, handshake_ms, close_wait_ms].contains(&0) {
            return Err(Error::bad_argument("a timeout of 0"));
        }
        let pick = |v: c_int| (v > 0).then(|| ms(v));
        (o.connect, o.handshake, o.close_wait) = (pick(connect_ms), pick(handshake_ms), pick(close_wait_ms));
        Ok(SSHBRIDGE_OK)
    })
}

/// keepalive@openssh.com after `interval_ms` of server silence, the server declared dead after
/// `max_missed` unanswered ones; `interval_ms` 0 turns it off.
///
/// # Safety
/// `o` is a live options object.
#[no_mangle]
pub unsafe extern "C" fn sshbridge_options_set_keepalive(o: *mut sshbridge_options, interval_ms: c_int, max_missed: c_int) -> c_int {
    guard(|| {
        // SAFETY: per the contract.
        let o = unsafe { opts(o)? };
        if interval_ms < 0 || (interval_ms > 0 && max_missed <= 0) {
            return Err(Error::bad_argument("keepalive interval < 0 or max_missed <= 0"));
        }
        o.keepalive = Some(((interval_ms > 0).then(|| ms(interval_ms)), max_missed.unsigned_abs()));
        Ok(SSHBRIDGE_OK)
    })
}

/// Restrict one algorithm category to a comma list, in preference order (`SSHBRIDGE_ALG_*`).
/// An unknown name is refused.
///
/// # Safety
/// `list` is NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn sshbridge_options_set_algorithms(o: *mut sshbridge_options, kind: c_int, list: *const c_char) -> c_int {
    guard(|| {
        // SAFETY: per the contract.
        let (o, l) = unsafe { (opts(o)?, c_string(list, "list")?) };
        let l = l.filter(|l| !l.is_empty()).ok_or_else(|| Error::bad_argument("empty algorithm list"))?;
        let slot = usize::try_from(kind - 1).ok().filter(|&i| i < 4).ok_or_else(|| Error::bad_argument("unknown algorithm kind"))?;
        // Checked now, so a typo is reported here rather than at connect.
        let mut probe = crate::algs::Preferences::default();
        let mut args: [Option<&str>; 4] = [None; 4];
        if let Some(a) = args.get_mut(slot) {
            *a = Some(&l);
        }
        probe.restrict(args[0], args[1], args[2], args[3])?;
        if let Some(s) = o.algorithms.get_mut(slot) {
            *s = Some(l);
        }
        Ok(SSHBRIDGE_OK)
    })
}

/// Judge the server's host key by an OpenSSH known_hosts file: `path` (NULL: the user's
/// `~/.ssh/known_hosts` and the system files), `mode` `SSHBRIDGE_HOSTKEY_STRICT` (unknown and
/// changed keys refused), `_ACCEPT_NEW` (trust on first use, changed keys refused) or
/// `_ACCEPT_ANY` (OpenSSH's `StrictHostKeyChecking no`: new keys recorded, a changed key
/// accepted without trust, so no password is sent). Not together with pinned host keys.
///
/// # Safety
/// `path` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn sshbridge_options_set_known_hosts(o: *mut sshbridge_options, path: *const c_char, mode: c_int) -> c_int {
    guard(|| {
        // SAFETY: per the contract.
        let (o, path) = unsafe { (opts(o)?, c_string(path, "path")?) };
        set_known_hosts(o, path, mode)
    })
}

#[cfg(feature = "known-hosts")]
fn set_known_hosts(o: &mut sshbridge_options, path: Option<String>, mode: c_int) -> Result<c_int, Error> {
    let strict = match mode {
        1 => Strict::Yes,
        2 => Strict::AcceptNew,
        3 => Strict::No,
        _ => return Err(Error::bad_argument(format!("unknown known_hosts mode {mode}"))),
    };
    let kh = match path {
        Some(p) if !p.is_empty() => KnownHosts::file(p),
        _ => KnownHosts::user_default(),
    };
    o.known_hosts = Some(kh.mode(strict));
    Ok(SSHBRIDGE_OK)
}

/// Without the `known-hosts` feature: refused, with the error naming the feature.
#[cfg(not(feature = "known-hosts"))]
fn set_known_hosts(_: &mut sshbridge_options, _: Option<String>, _: c_int) -> Result<c_int, Error> {
    Err(crate::runtime::known_hosts::known_hosts_unavailable())
}

/// Record new hosts in known_hosts as hashed names (`|1|salt|hash`, OpenSSH's HashKnownHosts);
/// `on` 0 or 1.
///
/// # Safety
/// `o` is a live options object.
#[no_mangle]
pub unsafe extern "C" fn sshbridge_options_hash_known_hosts(o: *mut sshbridge_options, on: c_int) -> c_int {
    guard(|| {
        // SAFETY: per the contract.
        unsafe { opts(o)? }.hash_known_hosts = on != 0;
        Ok(SSHBRIDGE_OK)
    })
}

/// Refuse servers without strict key exchange (Terrapin, CVE-2023-48795); `on` 0 or 1.
///
/// # Safety
/// `o` is a live options object.
#[no_mangle]
pub unsafe extern "C" fn sshbridge_options_require_strict_kex(o: *mut sshbridge_options, on: c_int) -> c_int {
    guard(|| {
        // SAFETY: per the contract.
        unsafe { opts(o)? }.require_strict_kex = on != 0;
        Ok(SSHBRIDGE_OK)
    })
}

/// The C callback and its user data, callable from the connection's thread.
struct CLog {
    cb: extern "C" fn(*mut c_void, c_int, *const c_char),
    ud: usize,
}

/// Send this connection's log lines (debug and above: 1 error, 2 warn, 3 info, 4 debug) to
/// `cb(ud, level, line)`, from the connection's thread; `cb` NULL turns it off. Returns
/// `SSHBRIDGE_E_UNSUPPORTED` when the program installed its own Rust logger. The callback runs
/// while the connection is busy: it must return quickly and must not call sshbridge functions
/// on the same connection.
///
/// # Safety
/// `cb` stays callable and `ud` valid for as long as connections made with these options live.
#[no_mangle]
pub unsafe extern "C" fn sshbridge_options_set_log(
    o: *mut sshbridge_options,
    cb: Option<extern "C" fn(*mut c_void, c_int, *const c_char)>,
    ud: *mut c_void,
) -> c_int {
    guard(|| {
        // SAFETY: per the contract.
        let o = unsafe { opts(o)? };
        let Some(cb) = cb else {
            o.log = None;
            return Ok(SSHBRIDGE_OK);
        };
        if !LogSink::install() {
            return Ok(SSHBRIDGE_E_UNSUPPORTED);
        }
        let c = Arc::new(CLog { cb, ud: ud as usize });
        o.log = Some(LogSink(Arc::new(move |level, line| {
            let lvl = match level {
                log::Level::Error => 1,
                log::Level::Warn => 2,
                log::Level::Info => 3,
                _ => 4,
            };
            let text = std::ffi::CString::new(line.replace('\0', "?")).unwrap_or_default();
            (c.cb)(c.ud as *mut c_void, lvl, text.as_ptr());
        })));
        Ok(SSHBRIDGE_OK)
    })
}

/// The connection settings: the handle's `auth` plus the options.
///
/// # Safety
/// `auth` valid per the drop-in contract; `o` NULL or a live options object.
unsafe fn build(auth: *const cyg_dropbear_authenticate, o: *const sshbridge_options) -> Result<(Config, ChannelSetup, Duration), Error> {
    // SAFETY: per the contract.
    let auth = unsafe { auth.as_ref() }.ok_or_else(|| Error::bad_argument("auth is NULL"))?;
    // SAFETY: as above.
    let mut cfg = unsafe { config_from(auth) }?;
    let mut close_wait = drop_in_settings().close_wait_timeout;
    let mut setup = ChannelSetup::default();
    // SAFETY: per the contract.
    if let Some(o) = unsafe { o.as_ref() } {
        let mut creds = o.identities.clone();
        creds.append(&mut cfg.credentials);
        cfg.credentials = creds;
        cfg.host_keys.extend(o.host_keys.iter().cloned());
        if let Some(kh) = &o.known_hosts {
            if !cfg.host_keys.is_empty() {
                return Err(Error::bad_argument("pinned host keys and a known_hosts file together"));
            }
            cfg.host_key_policy = HostKeyPolicy::KnownHosts(kh.clone().hash_new_entries(o.hash_known_hosts));
        }
        if let Some(d) = o.connect {
            cfg.connect_timeout = d;
        }
        if let Some(d) = o.handshake {
            cfg.handshake_timeout = d;
            cfg.auth_timeout = d;
        }
        if let Some(d) = o.close_wait {
            close_wait = d;
        }
        if let Some((interval, max)) = o.keepalive {
            cfg.keepalive_interval = interval;
            cfg.keepalive_max = max;
        }
        let [kex, hk, cipher, mac] = &o.algorithms;
        cfg.algorithms.restrict(kex.as_deref(), hk.as_deref(), cipher.as_deref(), mac.as_deref())?;
        cfg.log_sink = o.log.clone();
        cfg.require_strict_kex = o.require_strict_kex;
        setup = ChannelSetup { env: o.env.clone(), pty: o.pty.clone() };
    }
    Ok((cfg, setup, close_wait))
}

fn host_port(host: *const c_char, port: c_int) -> Result<(String, u16), Error> {
    // SAFETY: host is NULL or NUL-terminated per the contract of the callers.
    let host = unsafe { c_string(host, "host") }?.filter(|h| !h.is_empty()).ok_or_else(|| Error::bad_argument("host is NULL or empty"))?;
    let port = u16::try_from(port).ok().filter(|&p| p > 0).ok_or_else(|| Error::bad_argument(format!("bad port {port}")))?;
    Ok((host, port))
}

/// Like `cyg_dropbear_ssh_connect`, but by host name or address literal (every address
/// getaddrinfo gives, in turn) and with options (NULL: the defaults). Returns 1 on success, 0
/// on failure with `db_error` set (its class: `sshbridge_error_code`).
///
/// # Safety
/// As `cyg_dropbear_ssh_connect`; `host` NUL-terminated; `o` NULL or a live options object.
#[no_mangle]
pub unsafe extern "C" fn sshbridge_connect(
    h: *mut cyg_dropbear_cli_handle,
    host: *const c_char,
    port: c_int,
    auth: *const cyg_dropbear_authenticate,
    command: *const c_char,
    o: *const sshbridge_options,
) -> c_int {
    // SAFETY: NULL or writable handle memory per the contract; initialised before use.
    let Some(h) = (unsafe { h.as_mut() }) else { return 0 };
    h.db_stdin_stdout = -1;
    h.db_stderr = -1;
    h.db_exitcode = -1;
    h.db_error = [0; CYG_DROPBEAR_MAX_ERROR];
    h.db_private = std::ptr::null_mut();
    let r = catch_unwind(AssertUnwindSafe(|| -> Result<(), Error> {
        let (host, port) = host_port(host, port)?;
        // SAFETY: per the contract.
        let (cfg, setup, close_wait) = unsafe { build(auth, o) }?;
        LogSink::set_for_this_thread(cfg.log_sink.clone());
        // SAFETY: NULL or NUL-terminated per the contract.
        let command = (!command.is_null()).then(|| unsafe { CStr::from_ptr(command) }.to_bytes().to_vec());
        let r = Session::connect((host.as_str(), port), cfg).and_then(|s| attach_command(h, &s, command, &setup, close_wait));
        LogSink::set_for_this_thread(None);
        r
    }));
    match r {
        Ok(Ok(())) => 1,
        Ok(Err(e)) => {
            set_error_of(h, &e);
            0
        }
        Err(_) => {
            set_error(h, "internal error: panic during connect");
            store_code(h, SSHBRIDGE_E_INTERNAL);
            0
        }
    }
}

/// Open a connection for many commands (`sshbridge_conn_exec`) and forwards
/// (`sshbridge_conn_forward`). NULL on failure, with the message in `err` (`errlen` bytes,
/// NUL-terminated; may be NULL).
///
/// # Safety
/// As `sshbridge_connect`; `err` NULL or `errlen` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn sshbridge_conn_open(
    host: *const c_char,
    port: c_int,
    auth: *const cyg_dropbear_authenticate,
    o: *const sshbridge_options,
    err: *mut c_char,
    errlen: usize,
) -> *mut sshbridge_conn {
    let r = catch_unwind(AssertUnwindSafe(|| -> Result<Box<sshbridge_conn>, Error> {
        let (host, port) = host_port(host, port)?;
        // SAFETY: per the contract.
        let (cfg, setup, close_wait) = unsafe { build(auth, o) }?;
        let session = Session::connect((host.as_str(), port), cfg)?;
        Ok(Box::new(sshbridge_conn { session, setup, close_wait }))
    }))
    .unwrap_or_else(|_| Err(Error::internal("panic during connect")));
    match r {
        Ok(c) => Box::into_raw(c),
        Err(e) => {
            if !err.is_null() && errlen > 0 {
                let text = e.to_string();
                let n = text.len().min(errlen - 1);
                // SAFETY: `err` has `errlen` writable bytes per the contract; n < errlen.
                unsafe {
                    std::ptr::copy_nonoverlapping(text.as_ptr().cast::<c_char>(), err, n);
                    *err.add(n) = 0;
                }
            }
            std::ptr::null_mut()
        }
    }
}

/// Run `command` (NULL: a shell) over the connection; fills `h` exactly as
/// `cyg_dropbear_ssh_connect` does (1 success, 0 failure with `db_error`); close it with
/// `cyg_dropbear_ssh_close`. Any number at once, from any threads.
///
/// # Safety
/// `c` a live connection; `h` writable handle memory; `command` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn sshbridge_conn_exec(c: *const sshbridge_conn, h: *mut cyg_dropbear_cli_handle, command: *const c_char) -> c_int {
    // SAFETY: per the contract.
    let Some(h) = (unsafe { h.as_mut() }) else { return 0 };
    h.db_stdin_stdout = -1;
    h.db_stderr = -1;
    h.db_exitcode = -1;
    h.db_error = [0; CYG_DROPBEAR_MAX_ERROR];
    h.db_private = std::ptr::null_mut();
    // SAFETY: per the contract.
    let Some(c) = (unsafe { c.as_ref() }) else {
        set_error_of(h, &Error::bad_argument("connection is NULL"));
        return 0;
    };
    let r = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: NULL or NUL-terminated per the contract.
        let command = (!command.is_null()).then(|| unsafe { CStr::from_ptr(command) }.to_bytes().to_vec());
        attach_command(h, &c.session, command, &c.setup, c.close_wait)
    }))
    .unwrap_or_else(|_| Err(Error::internal("panic in sshbridge_conn_exec")));
    match r {
        Ok(()) => 1,
        Err(e) => {
            set_error_of(h, &e);
            0
        }
    }
}

/// A socket joined to a TCP connection the server makes to `host:port` (direct-tcpip): read
/// and write it; `shutdown(fd, SHUT_WR)` half-closes; `close(fd)` ends it. Returns the
/// descriptor, or a negative `SSHBRIDGE_E_*` (`SSHBRIDGE_E_REFUSED`: the server could not
/// connect). Forwards end at the latest when the connection closes.
///
/// # Safety
/// `c` a live connection; `host` NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn sshbridge_conn_forward(c: *const sshbridge_conn, host: *const c_char, port: c_int) -> c_int {
    guard(|| {
        // SAFETY: per the contract.
        let c = unsafe { c.as_ref() }.ok_or_else(|| Error::bad_argument("connection is NULL"))?;
        let (host, port) = host_port(host, port)?;
        let ch = c.session.direct_tcpip(&host, port)?;
        let (app, ours) = UnixStream::pair()?;
        ours.set_nonblocking(true)?;
        c.session.attach(Box::new(StreamBridge::new(ours, ch.into_id())));
        Ok(OwnedFd::from(app).into_raw_fd())
    })
}

/// Close the connection once its last command handle is closed (forwards end now).
///
/// # Safety
/// `c` NULL or a live connection, closed once.
#[no_mangle]
pub unsafe extern "C" fn sshbridge_conn_close(c: *mut sshbridge_conn) {
    if !c.is_null() {
        // SAFETY: made by Box::into_raw in sshbridge_conn_open, closed once per the contract.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(c) })));
    }
}

/// One line about the handle's connection: server identification, kex, host key algorithm and
/// SHA256 fingerprint, ciphers, MACs, strict kex. Returns its length (truncated to `len - 1`,
/// NUL-terminated) or a negative code.
///
/// # Safety
/// `h` a handle filled by a successful connect (not yet closed); `buf` `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn sshbridge_info(h: *const cyg_dropbear_cli_handle, buf: *mut c_char, len: usize) -> c_int {
    guard(|| {
        // SAFETY: per the contract.
        let h = unsafe { h.as_ref() }.ok_or_else(|| Error::bad_argument("handle is NULL"))?;
        if buf.is_null() || len == 0 {
            return Err(Error::bad_argument("buffer is NULL or empty"));
        }
        // SAFETY: db_private is NULL or the Connection made by connect, live until close.
        let conn = unsafe { h.db_private.cast::<Connection>().as_ref() }.ok_or_else(|| Error::bad_argument("handle is not connected"))?;
        let info = conn.session.info().ok_or_else(|| Error::bad_argument("no key exchange yet"))?;
        let n = info.negotiated;
        let mac = |m: Option<crate::algs::Mac>| m.map_or_else(|| "<implicit>".to_string(), |m| m.to_string());
        let line = format!(
            "server {}; kex {}; host key {} {}; cipher {} / {}; mac {} / {}; strict kex {}",
            info.server_ident,
            n.kex,
            n.host_key,
            info.host_key.fingerprint(),
            n.cipher_c2s,
            n.cipher_s2c,
            mac(n.mac_c2s),
            mac(n.mac_s2c),
            if info.strict_kex { "on" } else { "off" }
        );
        let k = line.len().min(len - 1);
        // SAFETY: `buf` has `len` writable bytes; k < len.
        unsafe {
            std::ptr::copy_nonoverlapping(line.as_ptr().cast::<c_char>(), buf, k);
            *buf.add(k) = 0;
        }
        Ok(c_int::try_from(k).unwrap_or(c_int::MAX))
    })
}

/// The class of the error in `db_error` (`SSHBRIDGE_E_*`), or 0 when there is none.
///
/// # Safety
/// `h` NULL or a handle a connect or close filled.
#[no_mangle]
pub unsafe extern "C" fn sshbridge_error_code(h: *const cyg_dropbear_cli_handle) -> c_int {
    // SAFETY: per the contract.
    let Some(h) = (unsafe { h.as_ref() }) else { return SSHBRIDGE_E_INVALID };
    if h.db_error.first().is_none_or(|&c| c == 0) {
        return SSHBRIDGE_OK;
    }
    let code = h.db_error.last().map_or(0, |&c| c_int::from(c as u8));
    if code == 0 {
        SSHBRIDGE_E_INTERNAL
    } else {
        -code
    }
}
