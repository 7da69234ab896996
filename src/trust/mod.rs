//! Host trust: how the server's host key (RFC 4251 section 4.1, RFC 4253 section 8) is judged
//! once its exchange-hash signature verified and before any credential is sent. Four policies:
//! pinned keys, OpenSSH's known_hosts files with StrictHostKeyChecking `yes` / `accept-new` /
//! `no` (sshconnect.c check_host_key, hostfile.c), an application verifier, or accept-any (the
//! eCos API without a host key). The host-key algorithm order follows the keys already known
//! for the host (sshconnect2.c order_hostkeyalgs). UpdateHostKeys (OpenSSH PROTOCOL section
//! 2.5) lives in `update`.
//!
//! Sans-IO: the runtime reads the files before connecting (`KnownHostsView`) and carries out
//! what the decision asks to write (`Record`, `update::Rewrite`).
//!
//! The known_hosts rule needs the `known-hosts` feature; without it the types stay (so code
//! naming them still builds) but no rule judges by files, and the runtime refuses the policy.

pub mod update;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::algs::SigAlg;
use crate::error::Error;
use crate::keys::known_hosts::Parsed;
#[cfg(feature = "known-hosts")]
use crate::keys::known_hosts::{self, Found, Outcome};
use crate::keys::PublicKey;

/// OpenSSH's StrictHostKeyChecking, without `ask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strict {
    /// Unknown hosts and changed keys are refused.
    #[default]
    Yes,
    /// Unknown hosts are trusted on first use and recorded; changed keys are refused.
    AcceptNew,
    /// Unknown hosts are recorded; a changed key is accepted without trust: no password is
    /// sent and nothing is written. Revoked keys are still refused.
    No,
}

/// The known_hosts files to consult and how (OpenSSH's UserKnownHostsFile,
/// GlobalKnownHostsFile, StrictHostKeyChecking, HashKnownHosts, UpdateHostKeys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownHosts {
    /// Read in order; new hosts are recorded in the first one.
    pub user_files: Vec<PathBuf>,
    /// Read after the user files; never written.
    pub system_files: Vec<PathBuf>,
    pub strict: Strict,
    pub hash_new: bool,
    pub update: bool,
}

impl KnownHosts {
    /// OpenSSH's defaults: `~/.ssh/known_hosts`, `~/.ssh/known_hosts2`, then
    /// `/etc/ssh/ssh_known_hosts`, `/etc/ssh/ssh_known_hosts2`; strict checking, plain names,
    /// UpdateHostKeys on (as OpenSSH does with the default user files).
    pub fn user_default() -> KnownHosts {
        let home = std::env::home_dir().unwrap_or_else(|| PathBuf::from("/"));
        let dot = home.join(".ssh");
        KnownHosts {
            user_files: vec![dot.join("known_hosts"), dot.join("known_hosts2")],
            system_files: vec![PathBuf::from("/etc/ssh/ssh_known_hosts"), PathBuf::from("/etc/ssh/ssh_known_hosts2")],
            strict: Strict::Yes,
            hash_new: false,
            update: true,
        }
    }

    /// One user file and no system files (`-o UserKnownHostsFile=F -o GlobalKnownHostsFile=none`);
    /// UpdateHostKeys off unless asked for, as OpenSSH does for a file given explicitly.
    pub fn file(path: impl Into<PathBuf>) -> KnownHosts {
        KnownHosts { user_files: vec![path.into()], system_files: Vec::new(), strict: Strict::Yes, hash_new: false, update: false }
    }

    pub fn mode(mut self, strict: Strict) -> Self {
        self.strict = strict;
        self
    }
    /// Record new hosts as `|1|salt|hash` (HashKnownHosts).
    pub fn hash_new_entries(mut self, on: bool) -> Self {
        self.hash_new = on;
        self
    }
    /// Follow the server's host key rotation (UpdateHostKeys).
    pub fn update_host_keys(mut self, on: bool) -> Self {
        self.update = on;
        self
    }
    pub fn system_files(mut self, files: Vec<PathBuf>) -> Self {
        self.system_files = files;
        self
    }
}

/// What an application verifier is asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKeyQuery {
    /// The host as typed (or `Config::host_key_alias`), and the port.
    pub host: String,
    pub port: u16,
    /// The host key, whose exchange-hash signature has verified.
    pub key: PublicKey,
}

pub type Verifier = Arc<dyn Fn(&HostKeyQuery) -> bool + Send + Sync>;

/// How the server's host key is judged (`Config::host_key_policy`).
#[derive(Clone)]
pub enum HostKeyPolicy {
    /// Only these keys.
    Pinned(Vec<PublicKey>),
    KnownHosts(KnownHosts),
    /// The application decides (true accepts). It is called on the connection's thread while
    /// the connection waits for the answer: it may ask a user or a database, but must not call
    /// into this connection's `Session` (that would wait for itself).
    Verify(Verifier),
    /// No verification at all (the eCos API without a host key).
    AcceptAny,
}

impl fmt::Debug for HostKeyPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostKeyPolicy::Pinned(k) => f.debug_tuple("Pinned").field(k).finish(),
            HostKeyPolicy::KnownHosts(k) => f.debug_tuple("KnownHosts").field(k).finish(),
            HostKeyPolicy::Verify(_) => f.write_str("Verify(..)"),
            HostKeyPolicy::AcceptAny => f.write_str("AcceptAny"),
        }
    }
}

/// One file as read at connect time.
#[derive(Debug, Clone)]
pub struct LoadedFile {
    pub path: PathBuf,
    /// A user file (may be written; UpdateHostKeys only follows keys found in one).
    pub user: bool,
    /// `None` when the file does not exist.
    pub parsed: Option<Parsed>,
}

/// The known_hosts files and the names to look up, for the core.
#[derive(Debug, Clone)]
pub struct KnownHostsView {
    pub files: Vec<LoadedFile>,
    /// `[host]:port` or `host` (lowercased), or the alias.
    pub name: String,
    /// The port-less name, tried when a non-22 port is NEW (no alias).
    pub portless: Option<String>,
    /// The name may be written (it has none of ``@?*#[]|'"\``) and there is a user file.
    pub writable: bool,
    pub settings: KnownHosts,
}

#[cfg(feature = "known-hosts")]
impl KnownHostsView {
    fn parsed(&self) -> (Vec<&Parsed>, Vec<usize>) {
        let mut files = Vec::new();
        let mut index = Vec::new();
        for (i, f) in self.files.iter().enumerate() {
            if let Some(p) = &f.parsed {
                files.push(p);
                index.push(i);
            }
        }
        (files, index)
    }

    fn place(&self, index: &[usize], f: &Found<'_>) -> String {
        let path = index.get(f.file).and_then(|&i| self.files.get(i)).map(|l| l.path.display().to_string());
        format!("{}:{}", path.unwrap_or_default(), f.entry.line)
    }

    fn first_user_file(&self) -> Option<&PathBuf> {
        self.files.iter().find(|f| f.user).map(|f| &f.path)
    }
}

/// The rule the transport applies.
#[derive(Clone, Default)]
pub enum Rule {
    /// `HostKeyCheck::pinned` (empty: accept any key).
    #[default]
    Pinned,
    #[cfg(feature = "known-hosts")]
    KnownHosts(Arc<KnownHostsView>),
    Verify { verifier: Verifier, host: String, port: u16 },
}

/// How the server's host key is checked (consulted by the transport).
#[derive(Clone, Default)]
pub struct HostKeyCheck {
    /// Accept only these keys; empty accepts any key (the eCos API's documented behaviour when
    /// no host key is given). Used when `rule` is `Rule::Pinned`.
    pub pinned: Vec<PublicKey>,
    pub rule: Rule,
}

impl fmt::Debug for HostKeyCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rule = match &self.rule {
            Rule::Pinned => "pinned".to_string(),
            #[cfg(feature = "known-hosts")]
            Rule::KnownHosts(v) => format!("known_hosts for {}", v.name),
            Rule::Verify { host, port, .. } => format!("verifier for {host}:{port}"),
        };
        f.debug_struct("HostKeyCheck").field("pinned", &self.pinned).field("rule", &rule).finish()
    }
}

/// A line to append to a user file (trust on first use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub path: PathBuf,
    pub name: String,
    pub key: PublicKey,
    pub hash: bool,
}

/// What the decision leaves for later.
#[derive(Debug, Clone, Default)]
pub struct Decision {
    /// Append this to the first user file.
    pub record: Option<Record>,
    /// The key was found on an unmarked line of a user file: UpdateHostKeys may follow.
    pub may_update: bool,
    /// Accepted without trust (a changed key under `Strict::No`): no password is sent.
    pub untrusted: bool,
    /// Warnings for the application (malformed lines, a changed key accepted).
    pub warnings: Vec<String>,
}

impl HostKeyCheck {
    /// Put the host-key algorithms of keys we know for this host first, so that the server
    /// presents a key we can check. Pinned types always go first; for known_hosts this is
    /// sshconnect2.c order_hostkeyalgs: the list stays as it is when its best algorithm's type
    /// is known.
    pub fn order(&self, algs: &mut [SigAlg]) {
        let known: Vec<String> = match &self.rule {
            Rule::Pinned => self.pinned.iter().map(|k| k.key_type().to_string()).collect(),
            #[cfg(feature = "known-hosts")]
            Rule::KnownHosts(v) => {
                let known = known_hosts::known_types(&v.parsed().0, &v.name);
                if algs.first().is_some_and(|a| known.iter().any(|t| t == a.key_type())) {
                    return;
                }
                known
            }
            Rule::Verify { .. } => return,
        };
        algs.sort_by_key(|a| !known.iter().any(|t| t == a.key_type()));
    }

    /// Judge a host key whose exchange-hash signature verified.
    pub fn decide(&self, key: &PublicKey) -> Result<Decision, Error> {
        match &self.rule {
            Rule::Pinned => {
                if self.pinned.is_empty() || self.pinned.iter().any(|k| k == key) {
                    return Ok(Decision::default());
                }
                let expected: Vec<String> = self.pinned.iter().map(|k| format!("{} {}", k.key_type(), k.fingerprint())).collect();
                Err(Error::HostKeyRejected(format!(
                    "host key mismatch: server offered {} {}, expected {}",
                    key.key_type(),
                    key.fingerprint(),
                    expected.join(" or ")
                )))
            }
            Rule::Verify { verifier, host, port } => {
                let q = HostKeyQuery { host: host.clone(), port: *port, key: key.clone() };
                if verifier(&q) {
                    Ok(Decision::default())
                } else {
                    Err(Error::HostKeyRejected(format!(
                        "host key {} {} of {host}:{port} refused by the application's verifier",
                        key.key_type(),
                        key.fingerprint()
                    )))
                }
            }
            #[cfg(feature = "known-hosts")]
            Rule::KnownHosts(v) => decide_known(v, key),
        }
    }
}

#[cfg(feature = "known-hosts")]
fn decide_known(v: &KnownHostsView, key: &PublicKey) -> Result<Decision, Error> {
    let (files, index) = v.parsed();
    let mut decision = Decision { warnings: files.iter().flat_map(|p| p.warnings.iter().cloned()).collect(), ..Decision::default() };
    let kind = key.kind();
    let name = &v.name;
    match known_hosts::check(&files, name, key.blob()) {
        Outcome::Ok(f) => {
            let user = index.get(f.file).and_then(|&i| v.files.get(i)).is_some_and(|l| l.user);
            decision.may_update = v.settings.update && user;
            Ok(decision)
        }
        Outcome::Revoked(f) => Err(Error::HostKeyRejected(format!(
            "@@@ WARNING: REVOKED HOST KEY DETECTED! @@@ The {kind} host key for {name} ({}) is marked as revoked in {}. \
             This could mean that a stolen key is being used to impersonate this host.",
            key.fingerprint(),
            v.place(&index, &f)
        ))),
        Outcome::Changed(f) => {
            let text = format!(
                "@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@ IT IS POSSIBLE THAT SOMEONE IS DOING \
                 SOMETHING NASTY! Someone could be eavesdropping on you right now (man-in-the-middle attack)! It is \
                 also possible that a host key has just been changed. The fingerprint for the {kind} key sent by the \
                 remote host {name} is {}. Offending {} key in {} ({}).",
                key.fingerprint(),
                f.entry.kind_name(),
                v.place(&index, &f),
                f.entry.fingerprint()
            );
            if v.settings.strict == Strict::No {
                decision.untrusted = true;
                decision.warnings.push(format!("{text} Continuing without trust: password authentication is disabled."));
                return Ok(decision);
            }
            Err(Error::HostKeyRejected(format!(
                "{text} Host key for {name} has changed and you have requested strict checking; nothing was sent and \
                 nothing written. If the change is expected, remove that line (ssh-keygen -R '{name}')."
            )))
        }
        Outcome::New => {
            // A non-22 port: a port-less entry holding the key is enough (no record, no update).
            if let Some(pl) = &v.portless {
                if matches!(known_hosts::check(&files, pl, key.blob()), Outcome::Ok(_)) {
                    return Ok(decision);
                }
            }
            let line = format!("{name} {}", key.to_openssh_line());
            let target = v.first_user_file().filter(|_| v.writable);
            match (v.settings.strict, target) {
                (Strict::AcceptNew | Strict::No, Some(path)) => {
                    decision.record = Some(Record { path: path.clone(), name: name.clone(), key: key.clone(), hash: v.settings.hash_new });
                    Ok(decision)
                }
                (Strict::Yes, _) => Err(Error::HostKeyRejected(format!(
                    "No {kind} host key is known for {name} and you have requested strict checking. The server's key \
                     fingerprint is {}; to trust it, add the line `{line}` to {} (or connect once with Strict::AcceptNew).",
                    key.fingerprint(),
                    v.first_user_file().map(|p| p.display().to_string()).unwrap_or_else(|| "a known_hosts file".into())
                ))),
                (_, None) => Err(Error::HostKeyRejected(format!(
                    "No {kind} host key is known for {name} ({}) and it cannot be recorded (no user known_hosts file, or \
                     a name with one of @?*#[]|'\"\\ in it).",
                    key.fingerprint()
                ))),
            }
        }
    }
}

#[cfg(all(test, feature = "known-hosts"))]
mod tests;
