//! The drop-in C API of the eCos Dropbear client: `cyg_dropbear_ssh_connect` and
//! `cyg_dropbear_ssh_close` with the `cyg_dropbear_cli_handle` and `cyg_dropbear_authenticate`
//! structures exactly as eCos documents them. Every exported body runs inside one panic
//! boundary; arguments are checked for NULL first; what the caller passes is copied, never
//! kept. The header `include/dropbear.h` is generated from this file by cbindgen.
#![allow(unsafe_code)]
#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int, c_void, CStr};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::auth::Credential;
use crate::connection::{OpenKind, Request};
use crate::error::Error;
use crate::keys::{PrivateKey, PublicKey};
use crate::runtime::session::{Config, Session};
use crate::runtime::stdio::{CloseMode, Shared, StdioBridge};

/// Size of `db_error`, terminating NUL included.
pub const CYG_DROPBEAR_MAX_ERROR: usize = 256;

/// Timeouts and keepalive of the drop-in API, process-wide (the C API has no place for them).
/// Rust code linked into the same program sets them with `set_drop_in_settings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropInSettings {
    /// TCP connect (default 10 s).
    pub connect_timeout: Duration,
    /// Key exchange plus authentication (default 30 s).
    pub handshake_timeout: Duration,
    /// Authentication alone (default 30 s).
    pub auth_timeout: Duration,
    /// How long `cyg_dropbear_ssh_close(h, 1)` waits for the remote command to exit (60 s).
    pub close_wait_timeout: Duration,
    /// keepalive@openssh.com after this much server silence (default 15 s; `None`: off) ...
    pub keepalive_interval: Option<Duration>,
    /// ... and the session is declared dead after this many unanswered ones (default 3).
    pub keepalive_max: u32,
}

impl DropInSettings {
    pub const DEFAULT: DropInSettings = DropInSettings {
        connect_timeout: Duration::from_secs(10),
        handshake_timeout: Duration::from_secs(30),
        auth_timeout: Duration::from_secs(30),
        close_wait_timeout: Duration::from_secs(60),
        keepalive_interval: Some(crate::client::DEFAULT_KEEPALIVE_INTERVAL),
        keepalive_max: crate::client::DEFAULT_KEEPALIVE_MAX,
    };
}

impl Default for DropInSettings {
    fn default() -> Self {
        DropInSettings::DEFAULT
    }
}

static SETTINGS: Mutex<DropInSettings> = parking_lot::const_mutex(DropInSettings::DEFAULT);

/// Change the drop-in API's timeouts for connections made from now on.
pub fn set_drop_in_settings(s: DropInSettings) {
    *SETTINGS.lock() = s;
}

pub fn drop_in_settings() -> DropInSettings {
    *SETTINGS.lock()
}

/// One SSH connection, as the eCos API describes it. The application only reads it.
#[repr(C)]
pub struct cyg_dropbear_cli_handle {
    /// Socket: write = remote stdin, read = remote stdout.
    pub db_stdin_stdout: c_int,
    /// Socket: read = remote stderr.
    pub db_stderr: c_int,
    /// Remote exit code after `cyg_dropbear_ssh_close(h, 1)`: the exit status, 128+N for
    /// signal N, -1 when the server reported none.
    pub db_exitcode: c_int,
    /// NUL-terminated error message after a failure.
    pub db_error: [c_char; CYG_DROPBEAR_MAX_ERROR],
    /// Library-private: the connection behind this handle.
    pub db_private: *mut c_void,
}

/// Authentication data; only read during `cyg_dropbear_ssh_connect`.
#[repr(C)]
pub struct cyg_dropbear_authenticate {
    pub db_username: *const c_char,
    pub db_host_rsa_key_pub: *const c_char,
    pub db_host_dsa_key_pub: *const c_char,
    pub db_id_rsa: *const c_char,
    pub db_id_rsa_keylen: c_int,
    pub db_id_dsa: *const c_char,
    pub db_id_dsa_keylen: c_int,
    pub db_password: *const c_char,
}

// The layout the C side sees; include/dropbear.h asserts the same offsets.
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(offset_of!(cyg_dropbear_cli_handle, db_stdin_stdout) == 0);
    assert!(offset_of!(cyg_dropbear_cli_handle, db_stderr) == size_of::<c_int>());
    assert!(offset_of!(cyg_dropbear_cli_handle, db_exitcode) == 2 * size_of::<c_int>());
    assert!(offset_of!(cyg_dropbear_cli_handle, db_error) == 3 * size_of::<c_int>());
    assert!(offset_of!(cyg_dropbear_authenticate, db_username) == 0);
    assert!(offset_of!(cyg_dropbear_authenticate, db_id_rsa_keylen) == 4 * size_of::<*const c_char>());
    assert!(offset_of!(cyg_dropbear_authenticate, db_password) > offset_of!(cyg_dropbear_authenticate, db_id_dsa_keylen));
};

/// What `db_private` points to.
struct Connection {
    /// The connection (its driver thread runs the socketpair bridge).
    session: Session,
    shared: Arc<Mutex<Shared>>,
}

/// Write `msg` into `db_error`: truncated to fit, always NUL-terminated.
fn set_error(h: &mut cyg_dropbear_cli_handle, msg: &str) {
    let bytes = msg.as_bytes();
    let n = bytes.len().min(CYG_DROPBEAR_MAX_ERROR - 1);
    for (dst, src) in h.db_error.iter_mut().zip(bytes.iter().take(n)) {
        // Control characters were escaped upstream; never let a NUL cut the message early.
        *dst = if *src == 0 { b'?' as c_char } else { *src as c_char };
    }
    if let Some(end) = h.db_error.get_mut(n) {
        *end = 0;
    }
}

/// Copy a C string the caller passed, if not NULL.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for the call.
unsafe fn c_string(p: *const c_char, what: &str) -> Result<Option<String>, Error> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL and NUL-terminated per the API contract.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map(|s| Some(s.to_string())).map_err(|_| Error::bad_argument(format!("{what} is not valid UTF-8")))
}

/// Copy key bytes: `len` bytes, or up to the NUL when `len` is 0 (key text in a C string).
///
/// # Safety
/// `p` is NULL or points to `len` readable bytes (or a NUL-terminated string when `len` is 0).
unsafe fn c_bytes(p: *const c_char, len: c_int, what: &str) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, Error> {
    if p.is_null() {
        return Ok(None);
    }
    if len < 0 {
        return Err(Error::bad_argument(format!("{what} length is negative")));
    }
    let bytes = if len == 0 {
        // SAFETY: the caller passed a NUL-terminated string (documented for len == 0).
        unsafe { CStr::from_ptr(p) }.to_bytes()
    } else {
        // SAFETY: the caller guarantees `len` readable bytes at `p`.
        unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len as usize) }
    };
    Ok(Some(zeroize::Zeroizing::new(bytes.to_vec())))
}

/// Read the address: AF_INET or AF_INET6 only.
fn socket_addr(ss: &libc::sockaddr_storage) -> Result<SocketAddr, Error> {
    match c_int::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: ss_family says the storage holds a sockaddr_in, which it is large and
            // aligned enough for.
            let sin: &libc::sockaddr_in = unsafe { &*(ss as *const libc::sockaddr_storage).cast() };
            Ok(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6: &libc::sockaddr_in6 = unsafe { &*(ss as *const libc::sockaddr_storage).cast() };
            Ok(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        other => Err(Error::bad_argument(format!("unsupported address family {other} (need AF_INET or AF_INET6)"))),
    }
}

/// Build the connection settings from the C structure (copying everything).
///
/// # Safety
/// `auth` points to a valid structure whose pointers obey the API contract.
unsafe fn config_from(auth: &cyg_dropbear_authenticate) -> Result<Config, Error> {
    // SAFETY (all calls below): pointers come from the caller's structure, per the contract.
    let user = unsafe { c_string(auth.db_username, "db_username") }?
        .ok_or_else(|| Error::bad_argument("db_username is NULL"))?;
    if user.is_empty() {
        return Err(Error::bad_argument("db_username is empty"));
    }
    let mut cfg = Config::new(user);
    let st = drop_in_settings();
    cfg.connect_timeout = st.connect_timeout;
    cfg.handshake_timeout = st.handshake_timeout;
    cfg.auth_timeout = st.auth_timeout;
    cfg.keepalive_interval = st.keepalive_interval;
    cfg.keepalive_max = st.keepalive_max;
    for (p, what) in [(auth.db_host_rsa_key_pub, "db_host_rsa_key_pub"), (auth.db_host_dsa_key_pub, "db_host_dsa_key_pub")] {
        if let Some(line) = unsafe { c_string(p, what) }? {
            if !line.trim().is_empty() {
                let key = PublicKey::from_openssh_line(&line).map_err(|e| Error::bad_argument(format!("{what}: {e}")))?;
                cfg.host_keys.push(key);
            }
        }
    }
    // The documented order: DSA key, then RSA key, then password.
    for (p, len, what) in [(auth.db_id_dsa, auth.db_id_dsa_keylen, "db_id_dsa"), (auth.db_id_rsa, auth.db_id_rsa_keylen, "db_id_rsa")] {
        if let Some(bytes) = unsafe { c_bytes(p, len, what) }? {
            let key = PrivateKey::from_bytes(&bytes, None).map_err(|e| Error::Key(format!("{what}: {e}")))?;
            cfg.credentials.push(Credential::key(key));
        }
    }
    if let Some(pw) = unsafe { c_string(auth.db_password, "db_password") }? {
        cfg.credentials.push(Credential::Password(Arc::new(zeroize::Zeroizing::new(pw))));
    }
    Ok(cfg)
}

/// Extension to the eCos API: set the process-wide timeouts and keepalive used by connections
/// made afterwards, in milliseconds. A negative value leaves that setting as it is;
/// `keepalive_interval_ms` 0 turns keepalive off, otherwise keepalive@openssh.com
/// is sent after that much server silence and the session is declared dead (EOF on the sockets,
/// an error in `db_error`) after `keepalive_max` unanswered ones. Zero connect, handshake or
/// close-wait timeouts, or a zero `keepalive_max` with keepalive on, are refused. Returns 1 on
/// success, 0 (nothing changed) otherwise. Defaults: connect 10000, handshake 30000,
/// close-wait 60000, keepalive 15000, max 3 (a frozen server is detected in about 60 s).
#[no_mangle]
pub extern "C" fn sshbridge_set_timeouts(
    connect_ms: c_int,
    handshake_ms: c_int,
    close_wait_ms: c_int,
    keepalive_interval_ms: c_int,
    keepalive_max: c_int,
) -> c_int {
    let r = catch_unwind(|| {
        let ms = |v: c_int| Duration::from_millis(u64::from(v.unsigned_abs()));
        let mut st = drop_in_settings();
        for (v, slot) in [(connect_ms, &mut st.connect_timeout), (handshake_ms, &mut st.handshake_timeout)] {
            match v {
                0 => return 0,
                v if v > 0 => *slot = ms(v),
                _ => {}
            }
        }
        match close_wait_ms {
            0 => return 0,
            v if v > 0 => st.close_wait_timeout = ms(v),
            _ => {}
        }
        if handshake_ms > 0 {
            st.auth_timeout = ms(handshake_ms);
        }
        match keepalive_interval_ms {
            0 => st.keepalive_interval = None,
            v if v > 0 => st.keepalive_interval = Some(ms(v)),
            _ => {}
        }
        if keepalive_max >= 0 {
            st.keepalive_max = keepalive_max.unsigned_abs();
        }
        if st.keepalive_interval.is_some() && st.keepalive_max == 0 {
            return 0;
        }
        set_drop_in_settings(st);
        1
    });
    r.unwrap_or(0)
}

/// Everything `connect` does, in the caller's thread until the command runs.
fn connect_inner(
    h: &mut cyg_dropbear_cli_handle,
    addr: &libc::sockaddr_storage,
    auth: &cyg_dropbear_authenticate,
    command: *const c_char,
) -> Result<(), Error> {
    let addr = socket_addr(addr)?;
    // SAFETY: `auth` is the caller's valid structure; `command` is NULL or a C string.
    let cfg = unsafe { config_from(auth) }?;
    // The command is bytes to SSH (RFC 4254 section 6.5): passed through whatever its encoding.
    let command = if command.is_null() {
        None
    } else {
        // SAFETY: non-NULL and NUL-terminated per the contract.
        Some(unsafe { CStr::from_ptr(command) }.to_bytes().to_vec())
    };
    let session = Session::connect(addr, cfg)?;
    let start = match command {
        Some(c) => Request::Exec(c),
        None => Request::Shell,
    };
    let channel = session.open_id(&OpenKind::Session, Some(start))?;
    let (app_io, worker_io) = UnixStream::pair()?;
    let (app_err, worker_err) = UnixStream::pair()?;
    for s in [&app_io, &worker_io] {
        crate::runtime::sys::set_send_buffer(s, SOCKETPAIR_BUFFER);
    }
    let shared = Arc::new(Mutex::new(Shared::default()));
    // The connection's one thread (its driver) takes the bridge over from here.
    session.attach(Box::new(StdioBridge::new(channel, worker_io, worker_err, shared.clone())));
    let conn = Box::new(Connection { session, shared });
    h.db_stdin_stdout = OwnedFd::from(app_io).into_raw_fd();
    h.db_stderr = OwnedFd::from(app_err).into_raw_fd();
    h.db_private = Box::into_raw(conn).cast();
    Ok(())
}

/// Send buffer of both ends of the stdin/stdout socketpair (bulk data flows there).
const SOCKETPAIR_BUFFER: usize = 1 << 20;

/// Connect to `addr`, authenticate with `auth`, and run `command` (NULL: an interactive shell).
/// Returns 1 with `db_stdin_stdout`/`db_stderr` set once the server accepted the command;
/// 0 with a message in `db_error` on any failure, leaving no descriptor, thread or memory behind.
///
/// # Safety
/// `handle` points to writable memory for a handle (its contents may be garbage); `addr` and
/// `auth` point to valid structures; strings are NUL-terminated; `db_id_*` point to
/// `db_id_*_keylen` bytes (or to a NUL-terminated key text when the length is 0).
#[no_mangle]
pub unsafe extern "C" fn cyg_dropbear_ssh_connect(
    handle: *mut cyg_dropbear_cli_handle,
    addr: *const libc::sockaddr_storage,
    auth: *const cyg_dropbear_authenticate,
    command: *const c_char,
) -> c_int {
    if handle.is_null() {
        return 0;
    }
    // SAFETY: non-NULL and points to writable handle memory per the contract; we initialise
    // every field before reading any.
    let h = unsafe { &mut *handle };
    h.db_stdin_stdout = -1;
    h.db_stderr = -1;
    h.db_exitcode = -1;
    h.db_error = [0; CYG_DROPBEAR_MAX_ERROR];
    h.db_private = std::ptr::null_mut();
    if addr.is_null() {
        set_error(h, "bad argument: addr is NULL");
        return 0;
    }
    if auth.is_null() {
        set_error(h, "bad argument: auth is NULL");
        return 0;
    }
    // SAFETY: both non-NULL and valid per the contract.
    let (addr, auth) = unsafe { (&*addr, &*auth) };
    match catch_unwind(AssertUnwindSafe(|| connect_inner(h, addr, auth, command))) {
        Ok(Ok(())) => 1,
        Ok(Err(e)) => {
            set_error(h, &e.to_string());
            0
        }
        Err(_) => {
            set_error(h, "internal error: panic during connect");
            0
        }
    }
}

/// End the connection. `wait` non-zero: every byte written to `db_stdin_stdout` before this
/// call is delivered, then end-of-file; waits (up to 60 s) for the remote command to exit and
/// sets `db_exitcode`. `wait` zero: returns at once; the worker finishes on its own within a few
/// seconds. Either way `db_stdin_stdout` and `db_stderr` are closed by this call (the
/// application must not close them itself) and set to -1.
///
/// # Safety
/// `handle` is NULL or a handle filled by a successful `cyg_dropbear_ssh_connect` (closing it
/// twice is harmless: the second call does nothing).
#[no_mangle]
pub unsafe extern "C" fn cyg_dropbear_ssh_close(handle: *mut cyg_dropbear_cli_handle, wait: c_int) {
    if handle.is_null() {
        return;
    }
    // SAFETY: non-NULL; a handle that connect filled.
    let h = unsafe { &mut *handle };
    let _ = catch_unwind(AssertUnwindSafe(|| close_inner(h, wait != 0)));
}

fn close_inner(h: &mut cyg_dropbear_cli_handle, wait: bool) {
    let p = std::mem::replace(&mut h.db_private, std::ptr::null_mut());
    if p.is_null() {
        return;
    }
    // SAFETY: db_private was made by Box::into_raw in connect and is taken exactly once
    // (replaced by NULL above).
    let conn = unsafe { Box::from_raw(p.cast::<Connection>()) };
    conn.shared.lock().close =
        Some(if wait { CloseMode::Wait(Instant::now() + drop_in_settings().close_wait_timeout) } else { CloseMode::NoWait });
    let Connection { session, shared } = *conn;
    session.shared().wake();
    if wait {
        // The bridge is bounded by the close-wait deadline; the driver ends when it is done.
        let sh = session.shared();
        let mut g = sh.lock();
        while !shared.lock().finished && !g.finished {
            sh.wait(&mut g, Some(Instant::now() + Duration::from_millis(200)));
        }
        drop(g);
        drop(session); // the last handle: the driver says goodbye and is joined
        let sh = shared.lock();
        h.db_exitcode = match &sh.exit {
            Some(st) => st.shell_code(),
            None => -1,
        };
        if let Some(e) = &sh.error {
            set_error(h, &e.to_string());
        }
    } else {
        // The driver finishes the bridge (within 5 s) and ends by itself.
        session.detach();
        drop(session);
    }
    for fd in [&mut h.db_stdin_stdout, &mut h.db_stderr] {
        if *fd >= 0 {
            // SAFETY: these descriptors were created by connect and handed to the application,
            // which (as documented) does not close them; they are closed exactly once, here.
            drop(unsafe { OwnedFd::from_raw_fd(*fd) });
            *fd = -1;
        }
    }
}
