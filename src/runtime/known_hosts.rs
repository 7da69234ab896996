//! The file side of host trust (OpenSSH's hostfile.c add_host_to_hostfile and
//! hostfile_replace_entries): the known_hosts files are read before connecting and handed to
//! the core (`trust::KnownHostsView`); a host trusted on first use is appended, and
//! UpdateHostKeys rewrites a file atomically (temp file in the same directory, rename). Writers
//! hold an exclusive flock(2) on the file and re-read it under the lock, so concurrent threads
//! and processes never lose or corrupt a line. Also: the host name a connection was asked for.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, ToSocketAddrs};

use crate::client::Client;
use crate::error::Error;
use crate::keys::PublicKey;
use crate::trust::{HostKeyCheck, HostKeyPolicy, Rule};
#[cfg(feature = "known-hosts")]
use {
    crate::keys::known_hosts,
    crate::random::Random,
    crate::runtime::sys::{self, OsRandom},
    crate::trust::update::Rewrite,
    crate::trust::{KnownHosts, KnownHostsView, LoadedFile, Record},
    std::fs::{self, File, OpenOptions},
    std::io::{self, Read, Write},
    std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt},
    std::path::Path,
    std::sync::Arc,
};

/// Largest known_hosts file read (bigger files are read up to here, with a warning).
#[cfg(feature = "known-hosts")]
const MAX_FILE: u64 = 16 * 1024 * 1024;
/// Attempts at locking a file that another process keeps replacing.
#[cfg(feature = "known-hosts")]
const LOCK_ATTEMPTS: usize = 20;

/// An address to connect to that also says which host name the user asked for, so the host
/// key is looked up under that name (`"name:port"` keeps `name`; a socket address gives the IP).
pub trait HostAddr: ToSocketAddrs {
    /// The host as given and the port; `None` when it cannot be told.
    fn host_port(&self) -> Option<(String, u16)>;
}

impl HostAddr for str {
    fn host_port(&self) -> Option<(String, u16)> {
        let (host, port) = match self.strip_prefix('[') {
            Some(rest) => {
                let (h, p) = rest.split_once("]:")?;
                (h, p)
            }
            None => self.rsplit_once(':')?,
        };
        Some((host.to_string(), port.parse().ok()?))
    }
}
impl HostAddr for String {
    fn host_port(&self) -> Option<(String, u16)> {
        self.as_str().host_port()
    }
}
impl<T: HostAddr + ?Sized> HostAddr for &T {
    fn host_port(&self) -> Option<(String, u16)> {
        (**self).host_port()
    }
}
impl HostAddr for (&str, u16) {
    fn host_port(&self) -> Option<(String, u16)> {
        Some((self.0.to_string(), self.1))
    }
}
impl HostAddr for (String, u16) {
    fn host_port(&self) -> Option<(String, u16)> {
        Some((self.0.clone(), self.1))
    }
}
macro_rules! ip_host_addr {
    ($($t:ty),*) => {$(
        impl HostAddr for $t {
            fn host_port(&self) -> Option<(String, u16)> {
                let a = SocketAddr::from(*self);
                Some((a.ip().to_string(), a.port()))
            }
        }
    )*};
}
ip_host_addr!(SocketAddr, SocketAddrV4, SocketAddrV6, (IpAddr, u16), (Ipv4Addr, u16), (Ipv6Addr, u16));

/// The error for a known_hosts policy in a build without the `known-hosts` feature.
#[cfg(not(feature = "known-hosts"))]
pub(crate) fn known_hosts_unavailable() -> Error {
    Error::bad_argument("host keys checked against known_hosts files need the `known-hosts` feature of sshbridge")
}

/// Read one file: `None` when it does not exist or cannot be read.
#[cfg(feature = "known-hosts")]
fn load(path: &Path) -> Option<known_hosts::Parsed> {
    let f = File::open(path).ok()?;
    let mut text = Vec::new();
    f.take(MAX_FILE).read_to_end(&mut text).ok()?;
    let mut parsed = known_hosts::parse(&text, &path.display().to_string());
    if text.len() as u64 >= MAX_FILE {
        parsed.warnings.push(format!("{}: read only the first {MAX_FILE} bytes", path.display()));
    }
    Some(parsed)
}

/// Read the files of a KnownHosts policy for `host`/`port` (or the alias).
#[cfg(feature = "known-hosts")]
fn view(kh: &KnownHosts, host: &str, port: u16, alias: Option<&str>) -> KnownHostsView {
    let (name, portless, writable) = match alias {
        Some(a) => (a.to_ascii_lowercase(), None, known_hosts::recordable(a)),
        None => (
            known_hosts::lookup_name(host, port),
            (port != 22).then(|| host.to_ascii_lowercase()),
            known_hosts::recordable(host),
        ),
    };
    let user = kh.user_files.iter().map(|p| (p, true));
    let system = kh.system_files.iter().map(|p| (p, false));
    let files = user.chain(system).map(|(p, user)| LoadedFile { path: p.clone(), user, parsed: load(p) }).collect();
    KnownHostsView { files, name, portless, writable: writable && !kh.user_files.is_empty(), settings: kh.clone() }
}

/// The core's host key check for a connection's policy. `host_keys` is `Config::host_keys`,
/// the pinned-keys shorthand; `target` the host and port asked for.
pub(crate) fn host_key_check(
    policy: &HostKeyPolicy,
    host_keys: &[PublicKey],
    alias: Option<&str>,
    target: Option<(String, u16)>,
) -> Result<HostKeyCheck, Error> {
    let mut pinned = host_keys.to_vec();
    let named = |what: &str| {
        target.clone().ok_or_else(|| Error::bad_argument(format!("{what} needs the host name: connect to \"name:port\" or set host_key_alias")))
    };
    let rule = match policy {
        HostKeyPolicy::AcceptAny => Rule::Pinned,
        HostKeyPolicy::Pinned(keys) => {
            pinned.extend(keys.iter().cloned());
            if pinned.is_empty() {
                return Err(Error::bad_argument("HostKeyPolicy::Pinned with no key (use AcceptAny to accept any key)"));
            }
            Rule::Pinned
        }
        _ if !host_keys.is_empty() => {
            return Err(Error::bad_argument("set either Config::host_keys (pinned keys) or a known_hosts/verifier policy, not both"))
        }
        #[cfg(feature = "known-hosts")]
        HostKeyPolicy::KnownHosts(kh) => {
            let (host, port) = match alias {
                Some(a) => (a.to_string(), 22),
                None => named("a known_hosts policy")?,
            };
            Rule::KnownHosts(Arc::new(view(kh, &host, port, alias)))
        }
        #[cfg(not(feature = "known-hosts"))]
        HostKeyPolicy::KnownHosts(_) => return Err(known_hosts_unavailable()),
        HostKeyPolicy::Verify(f) => {
            let (host, port) = match (alias, target.clone()) {
                (Some(a), t) => (a.to_string(), t.map_or(22, |t| t.1)),
                (None, Some(t)) => t,
                (None, None) => named("a verifier policy")?,
            };
            Rule::Verify { verifier: f.clone(), host, port }
        }
    };
    Ok(HostKeyCheck { pinned, rule })
}

#[cfg(feature = "known-hosts")]
fn io_err(path: &Path, what: &str, e: io::Error) -> Error {
    Error::Io { kind: e.kind(), message: format!("{what} {}: {e}", path.display()) }
}

/// Open `path` (creating it 0600 when `create`) and lock it, making sure the lock is on the
/// file the path names now (a rewrite may have renamed another file over it meanwhile).
#[cfg(feature = "known-hosts")]
fn open_locked(path: &Path, create: bool) -> Result<Option<File>, Error> {
    for _ in 0..LOCK_ATTEMPTS {
        let f = match OpenOptions::new().read(true).append(create).create(create).mode(0o600).open(path) {
            Ok(f) => f,
            Err(e) if !create && e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(path, "cannot open", e)),
        };
        sys::lock_exclusive(&f).map_err(|e| io_err(path, "cannot lock", e))?;
        let held = f.metadata().map_err(|e| io_err(path, "cannot stat", e))?;
        match fs::metadata(path) {
            Ok(now) if now.ino() == held.ino() && now.dev() == held.dev() => return Ok(Some(f)),
            _ => continue,
        }
    }
    Err(Error::Io { kind: io::ErrorKind::WouldBlock, message: format!("{} keeps being replaced", path.display()) })
}

#[cfg(feature = "known-hosts")]
fn read_all(f: &mut File, path: &Path) -> Result<Vec<u8>, Error> {
    let mut text = Vec::new();
    f.read_to_end(&mut text).map_err(|e| io_err(path, "cannot read", e))?;
    Ok(text)
}

/// Append a host trusted on first use: the directory is created 0700 if missing, the file
/// 0600; a missing final newline is added first; nothing is written when a line for the name
/// already holds the key (another thread or process got there first).
#[cfg(feature = "known-hosts")]
pub(crate) fn record(r: &Record) -> Result<(), Error> {
    if let Some(dir) = r.path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        fs::DirBuilder::new().mode(0o700).create(dir).map_err(|e| io_err(dir, "cannot create directory", e))?;
    }
    let mut f = open_locked(&r.path, true)?.ok_or_else(|| Error::internal("open for append"))?;
    let text = read_all(&mut f, &r.path)?;
    if known_hosts::holds(&text, &r.name, &r.key) {
        return Ok(());
    }
    let line = known_hosts::format_entry(&r.name, &r.key, r.hash, &mut OsRandom);
    let mut out = Vec::with_capacity(line.len() + 1);
    if text.last().is_some_and(|&b| b != b'\n') {
        out.push(b'\n');
    }
    out.extend_from_slice(line.as_bytes());
    f.write_all(&out).map_err(|e| io_err(&r.path, "cannot append to", e))?;
    f.sync_data().map_err(|e| io_err(&r.path, "cannot sync", e))
}

/// UpdateHostKeys: in each existing user file drop the name's lines whose key the server no
/// longer has; add the new keys to the first file. Each file is replaced atomically.
#[cfg(feature = "known-hosts")]
pub(crate) fn rewrite(r: &Rewrite) -> Result<(), Error> {
    for (i, path) in r.files.iter().enumerate() {
        let Some(mut f) = open_locked(path, false)? else { continue };
        let text = read_all(&mut f, path)?;
        let Some(new) = known_hosts::replace_entries(&text, &r.name, &r.keys, i == 0, r.hash, &mut OsRandom) else {
            continue;
        };
        let mode = f.metadata().map(|m| m.mode() & 0o7777).unwrap_or(0o600);
        let mut tag = [0u8; 6];
        OsRandom.fill(&mut tag);
        let suffix: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(format!(".{suffix}.tmp"));
        let tmp = path.with_file_name(tmp_name);
        let write = || -> io::Result<()> {
            let mut t = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
            t.write_all(&new)?;
            t.sync_all()?;
            fs::rename(&tmp, path)
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(io_err(path, "cannot rewrite", e));
        }
        drop(f);
    }
    Ok(())
}

/// Carry out what the core asks (called by the connection's driver after each batch of
/// input): record a host trusted on first use, rewrite files for UpdateHostKeys. A file that
/// cannot be written is logged, not fatal (as in OpenSSH).
#[cfg(feature = "known-hosts")]
pub(crate) fn carry_out(c: &mut Client) {
    if let Some((record, warnings)) = c.take_host_key_actions() {
        for w in &warnings {
            log::warn!(target: "sshbridge", "known_hosts: {w}");
        }
        if let Some(r) = record {
            match self::record(&r) {
                Ok(()) => log::info!(target: "sshbridge", "permanently added {} ({}) to {}", r.name, r.key.key_type(), r.path.display()),
                Err(e) => log::warn!(target: "sshbridge", "failed to add {} to {}: {e}", r.name, r.path.display()),
            }
        }
    }
    if let Some(rw) = c.take_known_hosts_update() {
        match rewrite(&rw) {
            Ok(()) => log::info!(target: "sshbridge", "UpdateHostKeys: {} now has {} keys", rw.name, rw.keys.len()),
            Err(e) => log::warn!(target: "sshbridge", "UpdateHostKeys failed: {e}"),
        }
    }
}

/// Without the `known-hosts` feature nothing is ever written (no rule asks for it).
#[cfg(not(feature = "known-hosts"))]
pub(crate) fn carry_out(_: &mut Client) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_as_given() {
        assert_eq!("Box.example:2222".host_port(), Some(("Box.example".into(), 2222)));
        assert_eq!("[::1]:22".host_port(), Some(("::1".into(), 22)));
        assert_eq!(String::from("h:1").host_port(), Some(("h".into(), 1)));
        assert_eq!(("h", 5).host_port(), Some(("h".into(), 5)));
        assert_eq!(SocketAddr::from(([127, 0, 0, 1], 2200)).host_port(), Some(("127.0.0.1".into(), 2200)));
        assert_eq!("nonsense".host_port(), None);
    }
}
