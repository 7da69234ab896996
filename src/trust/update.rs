//! UpdateHostKeys, OpenSSH PROTOCOL section 2.5: after authentication the server lists all its
//! host keys in the `hostkeys-00@openssh.com` global request; the keys we do not know yet are
//! sent back in `hostkeys-prove-00@openssh.com` (want-reply), and the server's answer holds one
//! signature per key over string "hostkeys-prove-00@openssh.com", string session identifier,
//! string key blob. With every new key proven, the host's lines in the user files are made to
//! hold exactly the server's keys (clientloop.c client_input_hostkeys,
//! client_global_hostkeys_prove_confirm, update_known_hosts), which the runtime carries out.
//!
//! It runs only when the connection was verified by an unmarked line of a user file, and stops
//! (changing nothing) on the cases OpenSSH leaves alone: wildcard or long host lists, marked
//! lines for the host, an offered key known under another name, a dropped key still listed
//! under another name, duplicate keys, a bad or missing signature.

use std::path::PathBuf;

use crate::algs::SigAlg;
use crate::error::Error;
use crate::keys::known_hosts::{self, Marker};
use crate::keys::{KeyKind, PublicKey};
use crate::msg::Msg;
use crate::transport::Transport;
use crate::wire::{Reader, Writer};

#[cfg(feature = "known-hosts")]
use super::Rule;
use super::KnownHostsView;
use std::sync::Arc;

/// The server's announcement.
pub const HOSTKEYS: &str = "hostkeys-00@openssh.com";
/// Our request for proof, and the string its signatures start with.
pub const HOSTKEYS_PROVE: &str = "hostkeys-prove-00@openssh.com";
/// Most keys we take from one announcement.
const MAX_KEYS: usize = 64;

/// The file edit UpdateHostKeys asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    /// The user files: lines for `name` whose key is not in `keys` are removed from each; keys
    /// no line holds are added to the first.
    pub files: Vec<PathBuf>,
    pub name: String,
    pub keys: Vec<PublicKey>,
    pub hash: bool,
}

#[derive(Default)]
enum State {
    #[default]
    Idle,
    /// Our hostkeys-prove request is out; `ahead` global requests of ours precede it.
    Proving { ahead: u32, keys: Vec<PublicKey>, new: Vec<bool>, rewrite: Rewrite },
    Done,
}

/// The client's side of UpdateHostKeys, and the once-only hand-over of what the host key
/// decision asks the runtime to do.
#[derive(Default)]
pub struct HostKeysUpdate {
    state: State,
    ready: Option<Rewrite>,
    /// Why the update stopped, for tests and logs.
    pub note: Option<String>,
    /// The decision's record and warnings were handed out.
    decision_taken: bool,
}

impl HostKeysUpdate {
    /// Once the host key was judged: the line to record (trust on first use) and the warnings,
    /// handed out once.
    pub fn take_decision(&mut self, t: &Transport) -> Option<(Option<super::Record>, Vec<String>)> {
        if self.decision_taken {
            return None;
        }
        let d = t.host_key_decision()?;
        self.decision_taken = true;
        Some((d.record.clone(), d.warnings.clone()))
    }

    /// The edit to carry out, once.
    pub fn take(&mut self) -> Option<Rewrite> {
        self.ready.take()
    }

    fn stop(&mut self, why: impl Into<String>) {
        self.note = Some(why.into());
        self.state = State::Done;
    }

    /// `hostkeys-00@openssh.com` arrived; `pending` global requests of ours await replies.
    pub fn on_announce(&mut self, data: &[u8], t: &mut Transport, pending: u32) {
        if !matches!(self.state, State::Idle) {
            return;
        }
        let Some(view) = update_view(t) else {
            return self.stop("UpdateHostKeys not enabled for this connection");
        };
        let prefs = &t.preferences().host_key;
        let mut keys: Vec<PublicKey> = Vec::new();
        let mut r = Reader::new(data);
        while !r.is_empty() {
            let Ok(blob) = r.string() else { return self.stop("malformed hostkeys-00 request") };
            let Ok(key) = PublicKey::from_blob(blob) else { continue };
            if !prefs.iter().any(|a| a.key_type() == key.key_type()) {
                continue;
            }
            if keys.contains(&key) {
                return self.stop(format!("server sent a duplicated {} host key", key.key_type()));
            }
            if keys.len() >= MAX_KEYS {
                return self.stop("server sent too many host keys");
            }
            keys.push(key);
        }
        if keys.is_empty() {
            return self.stop("server sent no usable host keys");
        }
        let user: Vec<_> = view.files.iter().filter(|f| f.user).collect();
        let mut known = vec![false; keys.len()];
        let mut old: Vec<Vec<u8>> = Vec::new();
        for e in user.iter().filter_map(|f| f.parsed.as_ref()).flat_map(|p| p.entries.iter()) {
            if !known_hosts::hosts_match(&e.hosts, &view.name) {
                if keys.iter().any(|k| k.blob() == e.blob.as_slice()) {
                    return self.stop("a host key of the server is known under another name");
                }
                continue;
            }
            if e.marker != Marker::None || complex(&e.hosts) {
                return self.stop("marker, wildcard or host list for this host: left alone");
            }
            match keys.iter().position(|k| k.blob() == e.blob.as_slice()) {
                Some(i) => {
                    if let Some(k) = known.get_mut(i) {
                        *k = true;
                    }
                }
                None => old.push(e.blob.clone()),
            }
        }
        if old.is_empty() && known.iter().all(|&k| k) {
            return self.stop("nothing to change");
        }
        let other_names = user
            .iter()
            .filter_map(|f| f.parsed.as_ref())
            .flat_map(|p| p.entries.iter())
            .any(|e| old.contains(&e.blob) && !known_hosts::hosts_match(&e.hosts, &view.name));
        if other_names {
            return self.stop("a dropped host key is still listed under another name");
        }
        let rewrite = Rewrite {
            files: user.iter().map(|f| f.path.clone()).collect(),
            name: view.name.clone(),
            keys: keys.clone(),
            hash: view.settings.hash_new,
        };
        if known.iter().all(|&k| k) {
            self.ready = Some(rewrite);
            return self.stop("old keys removed");
        }
        let mut w = Writer::new();
        for (k, _) in keys.iter().zip(&known).filter(|(_, &kn)| !kn) {
            w.string(k.blob());
        }
        t.send_msg(&Msg::GlobalRequest { name: HOSTKEYS_PROVE, want_reply: true, data: &w.into_vec() });
        self.state = State::Proving { ahead: pending, keys, new: known.iter().map(|k| !k).collect(), rewrite };
    }

    /// A REQUEST_SUCCESS or REQUEST_FAILURE arrived: true when it answers our proof request
    /// (the caller then does not count it as an answer to one of its own requests).
    pub fn on_reply(&mut self, m: &Msg<'_>, t: &Transport) -> bool {
        let State::Proving { ahead, .. } = &mut self.state else { return false };
        if *ahead > 0 {
            *ahead -= 1;
            return false;
        }
        let State::Proving { keys, new, mut rewrite, .. } = std::mem::take(&mut self.state) else { return false };
        self.state = State::Done;
        let data = match m {
            Msg::RequestSuccess { data } => *data,
            _ => {
                self.note = Some("server failed to confirm ownership of its host keys".into());
                return true;
            }
        };
        match verify_proofs(data, &keys, &new, t) {
            Ok(dropped) => {
                rewrite.keys = keys.into_iter().zip(dropped).filter(|(_, d)| !d).map(|(k, _)| k).collect();
                self.ready = Some(rewrite);
                self.note = Some("host keys updated".into());
            }
            Err(e) => self.note = Some(e.to_string()),
        }
        true
    }
}

/// The known_hosts files to update, when the connection was verified by an unmarked line of a
/// user file of a policy that follows UpdateHostKeys.
#[cfg(feature = "known-hosts")]
fn update_view(t: &Transport) -> Option<Arc<KnownHostsView>> {
    match &t.host_key_check().rule {
        Rule::KnownHosts(v) if v.settings.update && t.host_key_decision().is_some_and(|d| d.may_update) => Some(v.clone()),
        _ => None,
    }
}

/// Without the `known-hosts` feature no connection is verified by known_hosts files.
#[cfg(not(feature = "known-hosts"))]
fn update_view(_: &Transport) -> Option<Arc<KnownHostsView>> {
    None
}

/// hostspec_is_complex: wildcards, or more than `host,ip`.
fn complex(hosts: &[u8]) -> bool {
    hosts.contains(&b'*') || hosts.contains(&b'?') || hosts.iter().filter(|&&b| b == b',').count() > 1
}

/// Check one signature per new key; returns which keys to disregard (an RSA proof made with
/// SHA-1 when RSA was not the negotiated host-key algorithm).
fn verify_proofs(data: &[u8], keys: &[PublicKey], new: &[bool], t: &Transport) -> Result<Vec<bool>, Error> {
    let session_id = t.session_id().ok_or_else(|| Error::internal("no session id"))?;
    let negotiated = t.negotiated().map(|n| n.host_key);
    let mut dropped = vec![false; keys.len()];
    let mut r = Reader::new(data);
    for ((k, _), d) in keys.iter().zip(new).zip(dropped.iter_mut()).filter(|((_, &n), _)| n) {
        let sig = r.string().map_err(|_| Error::crypto("hostkeys-prove reply: a signature is missing"))?;
        let alg_name = Reader::new(sig).utf8().map_err(|_| Error::crypto("hostkeys-prove reply: unintelligible signature"))?;
        let alg = SigAlg::from_name(alg_name)
            .ok_or_else(|| Error::crypto(format!("hostkeys-prove reply: unknown signature algorithm {alg_name:?}")))?;
        if matches!(k.kind(), KeyKind::Rsa(_)) {
            match negotiated {
                // An RSA host key was negotiated: its algorithm is the one to use.
                Some(n) if n.key_type() == "ssh-rsa" && n != alg => {
                    return Err(Error::crypto(format!("RSA proof made with {alg}, not the negotiated {n}")))
                }
                Some(n) if n.key_type() == "ssh-rsa" => {}
                _ if !matches!(alg.name(), "rsa-sha2-256" | "rsa-sha2-512") => {
                    *d = true;
                    continue;
                }
                _ => {}
            }
        }
        let mut signed = Writer::new();
        signed.str(HOSTKEYS_PROVE).string(session_id).string(k.blob());
        k.verify(alg, &signed.into_vec(), sig)
            .map_err(|e| Error::crypto(format!("server gave a bad signature for its {} key: {e}", k.key_type())))?;
    }
    r.finish().map_err(|_| Error::crypto("hostkeys-prove reply: trailing bytes"))?;
    Ok(dropped)
}

#[cfg(all(test, feature = "known-hosts"))]
#[path = "update_tests.rs"]
mod tests;
