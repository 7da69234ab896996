//! User authentication, RFC 4252 (sections 5 to 8: none, publickey with the acceptability query
//! of section 7, password) and RFC 4256 (keyboard-interactive, answering password prompts with
//! the password), with RSA signature algorithm choice by RFC 8308 `server-sig-algs` and
//! RFC 8332. Runs after the transport reports the first key exchange done, so the host key has
//! been verified before any credential is sent.

use std::collections::VecDeque;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::algs::SigAlg;
use crate::error::{sanitize, Error};
use crate::keys::PrivateKey;
use crate::msg::{AuthMethod, Msg};
use crate::transport::Transport;
use crate::wire::{Reader, Writer};

/// Most text of USERAUTH_BANNER kept.
pub const MAX_BANNER: usize = 8 * 1024;
/// keyboard-interactive rounds answered before giving up on that method.
const MAX_KBD_ROUNDS: u32 = 4;
/// Most prompts in one INFO_REQUEST.
const MAX_PROMPTS: u32 = 16;
const SERVICE: &str = "ssh-connection";

/// One way to prove who we are, tried in the order given.
#[derive(Clone)]
pub enum Credential {
    Key(Arc<PrivateKey>),
    Password(Arc<Zeroizing<String>>),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Key(k) => write!(f, "Key({})", k.kind()),
            Credential::Password(_) => f.write_str("Password(..)"),
        }
    }
}

enum Wait {
    None,
    PkOk { key: Arc<PrivateKey>, alg: SigAlg },
    KeyResult,
    Password,
    Kbd { password: Arc<Zeroizing<String>>, rounds: u32 },
}

/// What an inbound auth message led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Continue,
    Success,
}

pub struct Auth {
    user: String,
    /// What is left to try, in order.
    attempts: VecDeque<Attempt>,
    wait: Wait,
    tried: Vec<String>,
    allowed: Vec<String>,
    banner: String,
    /// Accept USERAUTH_SUCCESS in answer to "none" (OpenSSH's default; off = dbclient's
    /// DisableTrivialAuth).
    pub allow_none: bool,
    /// We have sent a password, a signature or an answer to a prompt.
    proved: bool,
}

enum Attempt {
    Key(Arc<PrivateKey>),
    KeyAlg(Arc<PrivateKey>, SigAlg),
    Password(Arc<Zeroizing<String>>),
    Kbd(Arc<Zeroizing<String>>),
}

impl Auth {
    /// Credentials are tried in the order given; a password is tried with "password" and then
    /// with "keyboard-interactive", whichever the server allows.
    pub fn new(user: String, creds: Vec<Credential>) -> Auth {
        let mut attempts = VecDeque::new();
        for c in creds {
            match c {
                Credential::Key(k) => attempts.push_back(Attempt::Key(k)),
                Credential::Password(p) => {
                    attempts.push_back(Attempt::Password(p.clone()));
                    attempts.push_back(Attempt::Kbd(p));
                }
            }
        }
        Auth {
            user,
            attempts,
            wait: Wait::None,
            tried: Vec::new(),
            allowed: Vec::new(),
            banner: String::new(),
            allow_none: true,
            proved: false,
        }
    }

    /// Send no password (nor keyboard-interactive answer): the host key is not trusted.
    pub fn forbid_passwords(&mut self) {
        self.attempts.retain(|a| matches!(a, Attempt::Key(_) | Attempt::KeyAlg(..)));
    }

    /// The server's USERAUTH_BANNER text so far, sanitized.
    pub fn banner(&self) -> &str {
        &self.banner
    }

    /// Start: ask with "none" to learn the allowed methods (RFC 4252 section 5.2).
    pub fn start(&mut self, t: &mut Transport) {
        t.send_msg(&Msg::UserauthRequest { user: &self.user, service: SERVICE, method: AuthMethod::None });
        self.tried.push("none".into());
        self.wait = Wait::None;
    }

    pub fn handle(&mut self, m: Msg<'_>, t: &mut Transport) -> Result<Outcome, Error> {
        match m {
            Msg::UserauthBanner { message } => {
                if self.banner.len() < MAX_BANNER {
                    let text = sanitize(message);
                    let room = MAX_BANNER - self.banner.len();
                    self.banner.extend(text.chars().take(room));
                }
                Ok(Outcome::Continue)
            }
            Msg::UserauthSuccess => {
                // "Trivial" success (PuTTY CVE-2021-36367, dbclient DisableTrivialAuth): the
                // server let us in without any proof: after "none", an unsigned key query, or
                // keyboard-interactive with nothing answered.
                if !self.proved && !self.allow_none {
                    return Err(Error::AuthFailed {
                        tried: self.tried.clone(),
                        allowed: vec!["(success without proof refused: trivial authentication disabled)".into()],
                    });
                }
                log::info!(target: "sshbridge", "authenticated as {:?} after [{}]", self.user, self.tried.join(", "));
                Ok(Outcome::Success)
            }
            Msg::UserauthFailure { methods, partial: _ } => {
                self.allowed = methods.iter().map(|s| s.to_string()).collect();
                if let Some(last) = self.tried.last() {
                    log::info!(target: "sshbridge", "authentication {last} not accepted; server allows [{}]", self.allowed.join(", "));
                }
                self.next_attempt(t)?;
                Ok(Outcome::Continue)
            }
            Msg::Userauth60 { body } => {
                self.on_60(body, t)?;
                Ok(Outcome::Continue)
            }
            other => Err(Error::protocol(format!("unexpected {other:?} during authentication"))),
        }
    }

    fn on_60(&mut self, body: &[u8], t: &mut Transport) -> Result<(), Error> {
        match std::mem::replace(&mut self.wait, Wait::None) {
            Wait::PkOk { key, alg } => {
                // SSH_MSG_USERAUTH_PK_OK: string alg, string key blob (must echo ours).
                let mut r = Reader::new(body);
                let ok_alg = r.utf8()?;
                let ok_key = r.string()?;
                r.finish()?;
                let public = key.public_key();
                if ok_alg != alg.name() || ok_key != public.blob() {
                    return Err(Error::protocol("USERAUTH_PK_OK for a key we did not offer"));
                }
                let session_id = t.session_id().ok_or_else(|| Error::internal("no session id"))?.to_vec();
                let signed = signed_data(&session_id, &self.user, SERVICE, alg.name(), public.blob());
                let sig = key.sign(alg, &signed, t.rng())?;
                self.proved = true;
                t.send_msg(&Msg::UserauthRequest {
                    user: &self.user,
                    service: SERVICE,
                    method: AuthMethod::PublicKey { alg: alg.name(), key: public.blob(), sig: Some(&sig) },
                });
                self.wait = Wait::KeyResult;
                Ok(())
            }
            Wait::Kbd { password, rounds } => {
                // SSH_MSG_USERAUTH_INFO_REQUEST (RFC 4256 section 3.2).
                let mut r = Reader::new(body);
                let _name = r.string()?;
                let _instruction = r.string()?;
                let _lang = r.string()?;
                let count = r.u32()?;
                if count > MAX_PROMPTS {
                    return Err(Error::protocol(format!("keyboard-interactive request with {count} prompts")));
                }
                for _ in 0..count {
                    let _prompt = r.string()?;
                    let _echo = r.bool()?;
                }
                r.finish()?;
                if rounds >= MAX_KBD_ROUNDS {
                    return Err(Error::AuthFailed { tried: self.tried.clone(), allowed: self.allowed.clone() });
                }
                // Every prompt of a password login gets the password; an empty round (count 0)
                // is answered with no responses, as RFC 4256 section 3.4 requires.
                let responses: Vec<&[u8]> = (0..count).map(|_| password.as_bytes()).collect();
                self.proved |= count > 0;
                t.send_msg(&Msg::UserauthInfoResponse { responses });
                self.wait = Wait::Kbd { password, rounds: rounds + 1 };
                Ok(())
            }
            Wait::Password => {
                // PASSWD_CHANGEREQ: we cannot change passwords; treat as refused.
                self.tried.push("(password expired)".into());
                self.next_attempt(t)
            }
            Wait::None | Wait::KeyResult => Err(Error::protocol("unexpected USERAUTH message 60")),
        }
    }

    fn allows(&self, method: &str) -> bool {
        self.allowed.iter().any(|m| m == method)
    }

    /// Send the next request that the server's method list allows, or fail naming what was tried.
    fn next_attempt(&mut self, t: &mut Transport) -> Result<(), Error> {
        while let Some(attempt) = self.attempts.pop_front() {
            match attempt {
                Attempt::Key(key) => {
                    // Expand into one attempt per signature algorithm, best first: a server may
                    // list rsa-sha2-512 in server-sig-algs and still refuse it for users.
                    let algs = pick_user_sig_alg(&key.sig_algs(), t.server_sig_algs());
                    for alg in algs.into_iter().rev() {
                        self.attempts.push_front(Attempt::KeyAlg(key.clone(), alg));
                    }
                }
                Attempt::KeyAlg(key, alg) => {
                    if !self.allows("publickey") {
                        continue;
                    }
                    let public = key.public_key();
                    self.tried.push(format!("publickey {} {}", alg.name(), public.fingerprint()));
                    log::info!(target: "sshbridge", "authentication: trying publickey {} {}", alg.name(), public.fingerprint());
                    t.send_msg(&Msg::UserauthRequest {
                        user: &self.user,
                        service: SERVICE,
                        method: AuthMethod::PublicKey { alg: alg.name(), key: public.blob(), sig: None },
                    });
                    self.wait = Wait::PkOk { key, alg };
                    return Ok(());
                }
                Attempt::Password(pw) => {
                    if !self.allows("password") {
                        continue;
                    }
                    self.tried.push("password".into());
                    log::info!(target: "sshbridge", "authentication: trying password");
                    self.proved = true;
                    t.send_msg(&Msg::UserauthRequest {
                        user: &self.user,
                        service: SERVICE,
                        method: AuthMethod::Password { password: pw.as_str() },
                    });
                    self.wait = Wait::Password;
                    return Ok(());
                }
                Attempt::Kbd(pw) => {
                    if !self.allows("keyboard-interactive") {
                        continue;
                    }
                    self.tried.push("keyboard-interactive".into());
                    log::info!(target: "sshbridge", "authentication: trying keyboard-interactive");
                    t.send_msg(&Msg::UserauthRequest {
                        user: &self.user,
                        service: SERVICE,
                        method: AuthMethod::KeyboardInteractive { submethods: "" },
                    });
                    self.wait = Wait::Kbd { password: pw, rounds: 0 };
                    return Ok(());
                }
            }
        }
        Err(Error::AuthFailed { tried: self.tried.clone(), allowed: self.allowed.clone() })
    }
}

/// What a publickey signature covers (RFC 4252 section 7): the session identifier, then the
/// request itself with the signature flag set. The client signs it, the server verifies it.
pub fn signed_data(session_id: &[u8], user: &str, service: &str, alg: &str, key_blob: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.string(session_id).u8(crate::msg::USERAUTH_REQUEST).str(user).str(service);
    w.str("publickey").bool(true).str(alg).string(key_blob);
    w.into_vec()
}

/// The signature algorithms to try with a user key, given the server's
/// `server-sig-algs` (RFC 8308 section 3.1, RFC 8332 section 3.3): the best RSA SHA-2 variant the
/// server lists; SHA-1 `ssh-rsa` only when it lists nothing better.
pub fn pick_user_sig_alg(candidates: &[SigAlg], server_sig_algs: Option<&[String]>) -> Vec<SigAlg> {
    match server_sig_algs {
        Some(list) => {
            let listed: Vec<SigAlg> =
                candidates.iter().copied().filter(|a| list.iter().any(|s| s == a.name())).collect();
            if listed.is_empty() {
                // The server's list says nothing about this key type: try in our order.
                candidates.to_vec()
            } else {
                listed
            }
        }
        None => {
            // No server-sig-algs: an old server; SHA-1 RSA is what it surely speaks.
            #[cfg(feature = "legacy")]
            if candidates.contains(&SigAlg::SshRsa) {
                return vec![SigAlg::SshRsa];
            }
            candidates.to_vec()
        }
    }
}

#[cfg(all(test, feature = "rsa"))]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn rsa_algorithm_follows_server_sig_algs() {
        let rsa = SigAlg::for_key_type("ssh-rsa");
        let listed = names(&["ssh-ed25519", "rsa-sha2-256", "rsa-sha2-512"]);
        assert_eq!(pick_user_sig_alg(&rsa, Some(&listed))[0], SigAlg::RsaSha512);
        let only256 = names(&["rsa-sha2-256"]);
        assert_eq!(pick_user_sig_alg(&rsa, Some(&only256)), vec![SigAlg::RsaSha256]);
        #[cfg(feature = "legacy")]
        {
            assert_eq!(pick_user_sig_alg(&rsa, None), vec![SigAlg::SshRsa]);
            let sha1 = names(&["ssh-rsa"]);
            assert_eq!(pick_user_sig_alg(&rsa, Some(&sha1)), vec![SigAlg::SshRsa]);
        }
        let ed = SigAlg::for_key_type("ssh-ed25519");
        assert_eq!(pick_user_sig_alg(&ed, Some(&only256)), vec![SigAlg::Ed25519]);
    }
}
