//! SSH Capsules, the client side (the "SSH Capsules" seed, `shared/seeds/004_dfaac56c436ba7e5.txt`):
//! SSH used like the web. A capsule is reached as user `capsule` on port 1966 with public-key
//! authentication only and a key of its own per host (`~/.ssh/<host>_cap_id_ed25519`, made on
//! first use; the reference's `<host>_cap_id_rsa` / `<host>_anon_id_rsa` win when present); the
//! host key is trusted on first use under `[host]:1966` in `~/.ssh/known_hosts` and a changed
//! one is refused loudly (`trust`, OpenSSH's StrictHostKeyChecking accept-new); the host name as
//! typed goes to the server in an `env` request `HOST` (virtual hosting), with the client's
//! `LANG` and `TZ` (RFC 4254 section 6.4, `Config::env`).
//!
//! `Capsule::write_ssh_config` writes the OpenSSH configuration the seed describes, so that
//! `ssh`, `scp` and `git` share the identity and the trust with this client: a `Match user
//! capsule` block appended once to `~/.ssh/config` (never rewritten), and a per-host
//! `~/.ssh/<host>_cap_config` it includes. `gemcap://host[:port]/path` addresses map to the
//! command `gemini /path` (`gemcap`).

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::auth::Credential;
use crate::error::Error;
use crate::keys::{KeyKind, PrivateKey};
use crate::runtime::config::Config;
use crate::runtime::session::Session;
use crate::trust::{HostKeyPolicy, KnownHosts, Strict};

/// The user name of every capsule (the seed: never the local one, which would leak it).
pub const USER: &str = "capsule";
/// The capsule port.
pub const PORT: u16 = 1966;
/// The variables passed on from the client's environment when set.
pub const PASSED_ENV: [&str; 2] = ["LANG", "TZ"];
/// Largest private key file read.
const MAX_KEY_FILE: u64 = 1024 * 1024;

/// One capsule host and where its identity and trust live.
#[derive(Debug, Clone)]
pub struct Capsule {
    host: String,
    port: u16,
    user: String,
    home: PathBuf,
    /// `home` was given (`--home`): configuration files name paths in full, not with `~`
    /// (OpenSSH expands `~` from the password database, not from `$HOME`).
    home_given: bool,
    /// Empty: `<home>/.ssh/known_hosts`.
    known_hosts: Vec<PathBuf>,
}

/// The capsule's key and where it came from.
pub struct Identity {
    pub path: PathBuf,
    pub key: PrivateKey,
    /// Made now (first use).
    pub created: bool,
}

/// What `write_ssh_config` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshConfigReport {
    /// `~/.ssh/config`, and whether the `Match user` block was appended now (false: it was
    /// there already).
    pub config: PathBuf,
    pub match_added: bool,
    /// `~/.ssh/<host>_cap_config`: written now, already as wanted, or kept as the user left it.
    pub host_config: PathBuf,
    pub host_config_state: HostConfigState,
    pub identity: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostConfigState {
    Written,
    Unchanged,
    /// It exists with other content: never clobbered.
    KeptExisting,
}

fn io_err(path: &Path, what: &str, e: io::Error) -> Error {
    Error::Io { kind: e.kind(), message: format!("{what} {}: {e}", path.display()) }
}

/// A host name or address usable in file names and OpenSSH patterns.
fn check_host(host: &str) -> Result<(), Error> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && !host.starts_with(['-', '.'])
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
    if ok {
        Ok(())
    } else {
        Err(Error::bad_argument(format!("not a capsule host name: {:?}", crate::error::sanitize(host.as_bytes()))))
    }
}

impl Capsule {
    /// The capsule at `host` (as typed: it is sent as `HOST`), home directory `$HOME`.
    pub fn new(host: &str) -> Result<Capsule, Error> {
        check_host(host)?;
        let home = std::env::home_dir().ok_or_else(|| Error::bad_argument("no home directory (set HOME)"))?;
        Ok(Capsule { host: host.to_string(), port: PORT, user: USER.to_string(), home, home_given: false, known_hosts: Vec::new() })
    }

    /// Use `dir` in place of the home directory (`--home`, tests).
    pub fn home(mut self, dir: impl Into<PathBuf>) -> Capsule {
        self.home = dir.into();
        self.home_given = true;
        self
    }

    /// Another port than 1966 (the host key is then recorded under `[host]:port`).
    pub fn port(mut self, port: u16) -> Capsule {
        self.port = port;
        self
    }

    /// Another user than `capsule` (a capsule served by plain sshd for a system account).
    pub fn user(mut self, user: impl Into<String>) -> Capsule {
        self.user = user.into();
        self
    }

    /// The known_hosts files instead of `~/.ssh/known_hosts`; new hosts go to the first.
    pub fn known_hosts_files(mut self, files: Vec<PathBuf>) -> Capsule {
        self.known_hosts = files;
        self
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Where to connect: `Session::connect(capsule.addr(), capsule.config()?)`.
    pub fn addr(&self) -> (String, u16) {
        (self.host.clone(), self.port)
    }

    pub fn ssh_dir(&self) -> PathBuf {
        self.home.join(".ssh")
    }

    /// The file name stem of this host's files (host names are case-insensitive).
    fn stem(&self) -> String {
        self.host.to_ascii_lowercase()
    }

    /// The identity files in the order they are looked for: `<host>_cap_id_rsa`,
    /// `<host>_anon_id_rsa` (the reference's and the seed's names), `<host>_cap_id_ed25519`
    /// (ours, made when none exists).
    pub fn identity_paths(&self) -> [PathBuf; 3] {
        let d = self.ssh_dir();
        let s = self.stem();
        [d.join(format!("{s}_cap_id_rsa")), d.join(format!("{s}_anon_id_rsa")), d.join(format!("{s}_cap_id_ed25519"))]
    }

    /// The known_hosts policy: trust on first use, a changed key refused.
    pub fn known_hosts(&self) -> KnownHosts {
        let files = if self.known_hosts.is_empty() { vec![self.ssh_dir().join("known_hosts")] } else { self.known_hosts.clone() };
        let mut kh = KnownHosts::file(files.first().cloned().unwrap_or_default()).mode(Strict::AcceptNew);
        kh.user_files = files;
        kh.system_files(vec![PathBuf::from("/etc/ssh/ssh_known_hosts"), PathBuf::from("/etc/ssh/ssh_known_hosts2")])
    }

    /// The env requests: `HOST` as typed, then `LANG` and `TZ` when set in our environment.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![("HOST".to_string(), self.host.clone())];
        for name in PASSED_ENV {
            if let Some(v) = std::env::var(name).ok().filter(|v| !v.is_empty()) {
                env.push((name.to_string(), v));
            }
        }
        env
    }

    /// The identity: an existing RSA key of the reference's names, else ours, made now (0600,
    /// with its `.pub`, in a `.ssh` created 0700) if missing.
    pub fn identity(&self) -> Result<Identity, Error> {
        let [rsa, anon, ed] = self.identity_paths();
        for path in [rsa, anon, ed.clone()] {
            if path.exists() {
                let key = load_key(&path)?;
                return Ok(Identity { path, key, created: false });
            }
        }
        self.create_identity(ed)
    }

    fn create_identity(&self, path: PathBuf) -> Result<Identity, Error> {
        let dir = self.ssh_dir();
        if !dir.is_dir() {
            fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(|e| io_err(&dir, "cannot create directory", e))?;
        }
        let key = PrivateKey::generate(KeyKind::Ed25519)?;
        let text = key.to_openssh(None)?;
        // Written aside, then linked into place: never a half-written key under the real name,
        // and a key another process made meanwhile wins (link refuses to replace it).
        let tmp = dir.join(format!(".{}.tmp.{}", self.stem(), std::process::id()));
        let _ = fs::remove_file(&tmp);
        let write = || -> io::Result<()> {
            let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()
        };
        let linked = write().and_then(|()| fs::hard_link(&tmp, &path));
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Ok(Identity { key: load_key(&path)?, path, created: false });
            }
            Err(e) => return Err(io_err(&path, "cannot write", e)),
        }
        let mut pub_path = path.clone().into_os_string();
        pub_path.push(".pub");
        let line = format!("{} {}@{}\n", key.public_key().to_openssh(), self.user, self.host);
        write_replace(Path::new(&pub_path), line.as_bytes(), 0o644)?;
        Ok(Identity { path, key, created: true })
    }

    /// The connection settings: user, identity (made on first use), known_hosts trust on first
    /// use, publickey only (no password, no keyboard-interactive, no "none"), env requests.
    pub fn config(&self) -> Result<Config, Error> {
        let id = self.identity()?;
        let mut c = Config::new(self.user.clone());
        c.credentials = vec![Credential::key(id.key)];
        c.host_key_policy = HostKeyPolicy::KnownHosts(self.known_hosts());
        c.allow_none_auth = false;
        c.env = self.env();
        Ok(c)
    }

    /// Connect (the host key is looked up under `[host]:port`).
    pub fn connect(&self) -> Result<Session, Error> {
        Session::connect(self.addr(), self.config()?)
    }

    /// A path as OpenSSH configuration should name it: `~/...` under the real home, else in
    /// full; quoted when it holds blanks.
    fn shown(&self, p: &Path) -> String {
        let s = match p.strip_prefix(&self.home) {
            Ok(rest) if !self.home_given => format!("~/{}", rest.display()),
            _ => p.display().to_string(),
        };
        if s.contains([' ', '\t']) {
            format!("\"{s}\"")
        } else {
            s
        }
    }

    /// The `Include` pattern of the `Match user` block.
    fn include_pattern(&self) -> String {
        self.shown(&self.ssh_dir().join("*_cap_config"))
    }

    /// The block appended to `~/.ssh/config` (the seed's, with our per-host file names).
    pub fn match_block(&self) -> String {
        format!(
            "# SSH Capsules (written by capsule --ssh-config): user {user} on port {port}, one identity per host.\n\
             Match user {user}\n  PubkeyAuthentication yes\n  PasswordAuthentication no\n  KbdInteractiveAuthentication no\n  \
             PreferredAuthentications publickey\n  Port {port}\n  Include {inc}\n",
            user = self.user,
            port = self.port,
            inc = self.include_pattern()
        )
    }

    /// `~/.ssh/<host>_cap_config`.
    pub fn host_config_text(&self, identity: &Path) -> String {
        let mut t = format!(
            "# SSH Capsule {h} (written by capsule --ssh-config)\nHost {h}\n  SetEnv HOST={h}\n  SendEnv LANG TZ\n  \
             IdentityFile {id}\n  IdentitiesOnly yes\n  StrictHostKeyChecking accept-new\n",
            h = self.host,
            id = self.shown(identity)
        );
        let kh = self.known_hosts().user_files;
        if self.home_given || !self.known_hosts.is_empty() {
            let files: Vec<String> = kh.iter().map(|p| self.shown(p)).collect();
            t.push_str(&format!("  UserKnownHostsFile {}\n", files.join(" ")));
        }
        t
    }

    /// Write the OpenSSH configuration: append the `Match user` block to `~/.ssh/config`
    /// unless it is there already (other lines are never touched), write the per-host file
    /// unless one with other content exists, make the identity if missing.
    pub fn write_ssh_config(&self) -> Result<SshConfigReport, Error> {
        let id = self.identity()?;
        let dir = self.ssh_dir();
        let config = dir.join("config");
        let old = match fs::read(&config) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io_err(&config, "cannot read", e)),
        };
        let match_added = !has_match_include(&old, &self.user, &self.include_pattern(), &self.home);
        if match_added {
            let mut add = String::new();
            if !old.is_empty() {
                add.push_str(if old.ends_with('\n') { "\n" } else { "\n\n" });
            }
            add.push_str(&self.match_block());
            let mut f = OpenOptions::new().append(true).create(true).mode(0o600).open(&config).map_err(|e| io_err(&config, "cannot open", e))?;
            f.write_all(add.as_bytes()).map_err(|e| io_err(&config, "cannot append to", e))?;
            f.sync_data().map_err(|e| io_err(&config, "cannot sync", e))?;
        }
        let host_config = dir.join(format!("{}_cap_config", self.stem()));
        let want = self.host_config_text(&id.path);
        let host_config_state = match fs::read(&host_config) {
            Ok(b) if b == want.as_bytes() => HostConfigState::Unchanged,
            Ok(_) => HostConfigState::KeptExisting,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                write_replace(&host_config, want.as_bytes(), 0o600)?;
                HostConfigState::Written
            }
            Err(e) => return Err(io_err(&host_config, "cannot read", e)),
        };
        Ok(SshConfigReport { config, match_added, host_config, host_config_state, identity: id.path })
    }
}

impl Config {
    /// The settings for the capsule at `host` (see `Capsule`): user `capsule`, the per-host
    /// identity (made on first use under `~/.ssh`), known_hosts trust on first use, publickey
    /// only, `HOST`/`LANG`/`TZ` env requests. Connect to `(host, capsule::PORT)` so the host
    /// key is looked up under `[host]:1966`; `Capsule` changes the home, port or user.
    pub fn capsule(host: &str) -> Result<Config, Error> {
        Capsule::new(host)?.config()
    }
}

fn load_key(path: &Path) -> Result<PrivateKey, Error> {
    let f = fs::File::open(path).map_err(|e| io_err(path, "cannot open", e))?;
    let mut data = zeroize::Zeroizing::new(Vec::new());
    f.take(MAX_KEY_FILE).read_to_end(&mut data).map_err(|e| io_err(path, "cannot read", e))?;
    PrivateKey::from_bytes(&data, None).map_err(|e| Error::key(format!("{}: {e}", path.display())))
}

/// Replace `path` atomically (temp file beside it, rename) with `mode`.
fn write_replace(path: &Path, data: &[u8], mode: u32) -> Result<(), Error> {
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = fs::remove_file(&tmp);
    let write = || -> io::Result<()> {
        let mut f = OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_err(path, "cannot write", e)
    })
}

/// Whether `text` (an ssh_config) has a `Match user <user>` block holding `Include <pattern>`
/// (`~/` and the home directory are the same here).
fn has_match_include(text: &str, user: &str, pattern: &str, home: &Path) -> bool {
    let norm = |p: &str| {
        let p = p.trim_matches('"');
        match p.strip_prefix("~/") {
            Some(rest) => home.join(rest),
            None => PathBuf::from(p),
        }
    };
    let want = norm(pattern);
    let mut in_block = false;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(kw) = words.next().filter(|w| !w.starts_with('#')) else { continue };
        let args: Vec<&str> = words.collect();
        match kw.to_ascii_lowercase().as_str() {
            "match" => {
                in_block = matches!(args.as_slice(), [crit, u] if crit.eq_ignore_ascii_case("user") && *u == user);
            }
            "host" => in_block = false,
            "include" if in_block && args.iter().any(|a| norm(a) == want) => return true,
            _ => {}
        }
    }
    false
}

/// A `gemcap://host[:port]/path` address: the host, the port (`None`: 1966) and the
/// command to run, `gemini /path` (the path quoted for the server's word splitting).
pub fn gemcap(url: &str) -> Result<(String, Option<u16>, String), Error> {
    let bad = || Error::bad_argument(format!("not a gemcap:// address: {:?}", crate::error::sanitize(url.as_bytes())));
    let rest = url.strip_prefix("gemcap://").ok_or_else(bad)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (rest.get(..i).ok_or_else(bad)?, rest.get(i..).ok_or_else(bad)?),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p.parse::<u16>().map_err(|_| bad())?)),
        _ => (authority, None),
    };
    check_host(host)?;
    Ok((host.to_string(), port, format!("gemini {}", shell_quote(path))))
}

/// One word for a POSIX shell (and the capsule server's shell-like splitting).
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capsule_gemcap_addresses() {
        assert_eq!(gemcap("gemcap://example.com/hello.gmi").unwrap(), ("example.com".into(), None, "gemini /hello.gmi".into()));
        assert_eq!(gemcap("gemcap://h:2000").unwrap(), ("h".into(), Some(2000), "gemini /".into()));
        assert_eq!(gemcap("gemcap://h/a b").unwrap().2, "gemini '/a b'");
        assert_eq!(gemcap("gemcap://h/it's").unwrap().2, "gemini '/it'\\''s'");
        for bad in ["http://h/", "gemcap://", "gemcap://h:99999/", "gemcap://-oProxy/x", "gemcap://a b/"] {
            assert!(gemcap(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn capsule_host_names() {
        for ok in ["example.com", "127.0.0.1", "::1", "a-b_c"] {
            assert!(Capsule::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-oProxyCommand=x", "../x", "a/b", "a b", "*", ".hidden"] {
            assert!(Capsule::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn capsule_match_block_detection() {
        let home = Path::new("/h");
        let c = Capsule::new("example.com").unwrap().home(home);
        let block = c.match_block();
        assert!(block.contains("Match user capsule\n") && block.contains("  Port 1966\n"), "{block}");
        assert!(block.contains("Include /h/.ssh/*_cap_config\n"), "{block}");
        assert!(has_match_include(&block, "capsule", "/h/.ssh/*_cap_config", home));
        assert!(has_match_include("match User capsule\n include ~/.ssh/*_cap_config\n", "capsule", "/h/.ssh/*_cap_config", home));
        // Elsewhere than in the block, for another user, or commented out: not there.
        assert!(!has_match_include("Include ~/.ssh/*_cap_config\n", "capsule", "~/.ssh/*_cap_config", home));
        assert!(!has_match_include("Match user bob\nInclude ~/.ssh/*_cap_config\n", "capsule", "~/.ssh/*_cap_config", home));
        assert!(!has_match_include("Match user capsule\nHost x\nInclude ~/.ssh/*_cap_config\n", "capsule", "~/.ssh/*_cap_config", home));
        assert!(!has_match_include("Match user capsule\n#Include ~/.ssh/*_cap_config\n", "capsule", "~/.ssh/*_cap_config", home));
        let t = c.host_config_text(Path::new("/h/.ssh/example.com_cap_id_ed25519"));
        assert!(t.contains("Host example.com\n  SetEnv HOST=example.com\n"), "{t}");
        assert!(t.contains("IdentityFile /h/.ssh/example.com_cap_id_ed25519\n"), "{t}");
        assert!(t.contains("UserKnownHostsFile /h/.ssh/known_hosts\n"), "{t}");
    }
}
