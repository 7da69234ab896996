//! The server half of user authentication, RFC 4252 sections 5 to 8 (none, publickey with the
//! acceptability query and the signature of section 7 checked against the session identifier
//! before the application is asked, password, banner) and RFC 4256 (keyboard-interactive).
//! Hardened as OpenSSH's sshd: at most `max_tries` failures (MaxAuthTries), a hard cap on
//! requests, every failure answered no sooner than a minimum delay after its request (the same
//! for unknown users), the user and service fixed by the first request, password changes
//! refused, no SHA-1 signatures.

// Questions and events go one at a time, a few per connection: their size does not matter.
#![allow(clippy::large_enum_variant)]

use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::algs::SigAlg;
use crate::auth::signed_data;
use crate::error::Error;
use crate::keys::PublicKey;
use crate::msg::{AuthMethod, Msg};
use crate::transport::negotiate::user_alg_acceptable;
use crate::transport::Transport;
use crate::wire::Writer;

/// The service every request must name.
pub const SERVICE: &str = "ssh-connection";
/// Most authentication requests of one connection, failures or not ("none" and probes count).
pub const MAX_REQUESTS: u32 = 64;
/// Longest user name accepted.
const MAX_USER: usize = 256;

/// Which methods the server offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Methods {
    pub publickey: bool,
    pub password: bool,
    pub keyboard_interactive: bool,
}

impl Methods {
    fn list(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.publickey {
            v.push("publickey");
        }
        if self.password {
            v.push("password");
        }
        if self.keyboard_interactive {
            v.push("keyboard-interactive");
        }
        v
    }
}

/// The settings of the authentication half.
#[derive(Debug, Clone)]
pub struct AuthPolicy {
    pub methods: Methods,
    /// Sent once, before the first answer (USERAUTH_BANNER).
    pub banner: Option<String>,
    /// Failed attempts before disconnecting (OpenSSH's MaxAuthTries, 6).
    pub max_tries: u32,
    /// No failure is answered sooner than this after its request.
    pub failure_delay: Duration,
    /// keyboard-interactive: the prompts (text, echo) sent in one INFO_REQUEST.
    pub prompts: Vec<(String, bool)>,
}

impl Default for AuthPolicy {
    fn default() -> Self {
        AuthPolicy {
            methods: Methods { publickey: true, password: true, keyboard_interactive: false },
            banner: None,
            max_tries: 6,
            failure_delay: Duration::from_millis(100),
            prompts: vec![("Password: ".into(), false)],
        }
    }
}

/// A question for the application.
// One question at a time, moved once: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Question {
    Password { user: String, password: Zeroizing<String> },
    /// `signed`: the request carried a signature that verified over this session's identifier
    /// (a login); otherwise a probe ("would this key do?", answered with PK_OK).
    PublicKey { user: String, alg: SigAlg, key: PublicKey, signed: bool },
    KeyboardInteractive { user: String, responses: Vec<Zeroizing<String>> },
}

/// What a request led to.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing for the application (answered, or waiting).
    None,
    /// The application must answer this question (`answer`).
    Ask(Question),
}

pub struct ServerAuth {
    policy: AuthPolicy,
    user: Option<String>,
    failures: u32,
    requests: u32,
    banner_sent: bool,
    /// The question being asked and when its request arrived.
    asking: Option<(Question, Instant)>,
    /// keyboard-interactive: prompts sent, responses awaited.
    kbd_waiting: bool,
    /// A failure held back until the minimum delay passed.
    held: Option<Instant>,
    /// Methods that succeeded (for logs).
    pub method: Option<&'static str>,
}

impl ServerAuth {
    pub fn new(policy: AuthPolicy) -> ServerAuth {
        ServerAuth {
            policy,
            user: None,
            failures: 0,
            requests: 0,
            banner_sent: false,
            asking: None,
            kbd_waiting: false,
            held: None,
            method: None,
        }
    }

    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }
    pub fn failures(&self) -> u32 {
        self.failures
    }
    /// A question or a held failure: the server reads nothing more until it is settled.
    pub fn busy(&self) -> bool {
        self.asking.is_some() || self.held.is_some()
    }
    /// When a held failure is due.
    pub fn deadline(&self) -> Option<Instant> {
        self.held
    }

    /// Send the held failure once its time has come.
    pub fn on_timer(&mut self, now: Instant, t: &mut Transport) {
        if self.held.is_some_and(|due| now >= due) {
            self.held = None;
            self.send_failure(t);
        }
    }

    fn send_failure(&self, t: &mut Transport) {
        t.send_msg(&Msg::UserauthFailure { methods: self.policy.methods.list(), partial: false });
    }

    fn send_banner(&mut self, t: &mut Transport) {
        if self.banner_sent {
            return;
        }
        self.banner_sent = true;
        if let Some(b) = &self.policy.banner {
            t.send_msg(&Msg::UserauthBanner { message: b.as_bytes() });
        }
    }

    /// A failed attempt: counted, answered after the delay, fatal past the limit.
    fn fail(&mut self, since: Instant, now: Instant, t: &mut Transport) -> Result<Step, Error> {
        self.failures += 1;
        if self.failures >= self.policy.max_tries {
            return Err(Error::AuthFailed {
                tried: vec![format!("{} failed attempts", self.failures)],
                allowed: vec!["(too many authentication failures)".into()],
            });
        }
        let due = since + self.policy.failure_delay;
        if now >= due {
            self.send_failure(t);
        } else {
            self.held = Some(due);
        }
        Ok(Step::None)
    }

    /// A USERAUTH_REQUEST (the gate let it through only while authenticating).
    pub fn on_request(
        &mut self,
        user: &str,
        service: &str,
        method: AuthMethod<'_>,
        now: Instant,
        t: &mut Transport,
    ) -> Result<Step, Error> {
        self.requests += 1;
        if self.requests > MAX_REQUESTS {
            return Err(Error::protocol(format!("more than {MAX_REQUESTS} authentication requests")));
        }
        if service != SERVICE {
            return Err(Error::protocol(format!("authentication for service {:?}, not {SERVICE}", crate::error::sanitize(service.as_bytes()))));
        }
        if user.len() > MAX_USER {
            return Err(Error::protocol("user name too long"));
        }
        match &self.user {
            None => self.user = Some(user.to_string()),
            Some(u) if u != user => return Err(Error::protocol("the user changed during authentication")),
            Some(_) => {}
        }
        // A new request abandons a keyboard-interactive exchange in progress (RFC 4256 3.4).
        self.kbd_waiting = false;
        self.send_banner(t);
        let user = user.to_string();
        match method {
            // RFC 4252 section 5.2: the list of methods, not a failure.
            AuthMethod::None => {
                self.send_failure(t);
                Ok(Step::None)
            }
            AuthMethod::Password { password } if self.policy.methods.password => {
                self.ask(Question::Password { user, password: Zeroizing::new(password.to_string()) }, now)
            }
            AuthMethod::PublicKey { alg, key, sig } if self.policy.methods.publickey => {
                let Some(parsed) = parse_key(alg, key) else {
                    return self.fail(now, now, t);
                };
                let (alg, public) = parsed;
                let signed = match sig {
                    None => false,
                    Some(sig) => {
                        let session_id = t.session_id().ok_or_else(|| Error::internal("no session id"))?;
                        let data = signed_data(session_id, &user, SERVICE, alg.name(), key);
                        if public.verify(alg, &data, sig).is_err() {
                            log::info!(target: "sshbridge", "authentication: bad {alg} signature for {user:?}");
                            return self.fail(now, now, t);
                        }
                        true
                    }
                };
                self.ask(Question::PublicKey { user, alg, key: public, signed }, now)
            }
            AuthMethod::KeyboardInteractive { .. } if self.policy.methods.keyboard_interactive => {
                let mut w = Writer::new();
                w.str("").str("").str("").u32(u32::try_from(self.policy.prompts.len()).unwrap_or(0));
                for (prompt, echo) in &self.policy.prompts {
                    w.str(prompt).bool(*echo);
                }
                let mut payload = vec![crate::msg::USERAUTH_60];
                payload.extend_from_slice(&w.into_vec());
                t.send(&payload);
                self.kbd_waiting = true;
                Ok(Step::None)
            }
            // Password changes, methods not offered and unknown methods fail.
            _ => self.fail(now, now, t),
        }
    }

    /// USERAUTH_INFO_RESPONSE to our prompts.
    pub fn on_info_response(&mut self, responses: &[&[u8]], now: Instant, t: &mut Transport) -> Result<Step, Error> {
        if !self.kbd_waiting {
            return Err(Error::protocol("INFO_RESPONSE without an INFO_REQUEST"));
        }
        self.kbd_waiting = false;
        if responses.len() != self.policy.prompts.len() {
            return Err(Error::protocol(format!("{} responses to {} prompts", responses.len(), self.policy.prompts.len())));
        }
        let responses = responses
            .iter()
            .map(|r| std::str::from_utf8(r).map(|s| Zeroizing::new(s.to_string())))
            .collect::<Result<Vec<_>, _>>();
        let Ok(responses) = responses else {
            return self.fail(now, now, t);
        };
        let user = self.user.clone().unwrap_or_default();
        self.ask(Question::KeyboardInteractive { user, responses }, now)
    }

    fn ask(&mut self, q: Question, now: Instant) -> Result<Step, Error> {
        self.asking = Some((q.clone(), now));
        Ok(Step::Ask(q))
    }

    /// The application's answer to the question asked. Returns whether the user is now
    /// authenticated (a probe's yes only sends PK_OK).
    pub fn answer(&mut self, yes: bool, now: Instant, t: &mut Transport) -> Result<bool, Error> {
        let Some((q, since)) = self.asking.take() else {
            return Ok(false);
        };
        if !yes {
            self.fail(since, now, t)?;
            return Ok(false);
        }
        match q {
            Question::PublicKey { alg, key, signed: false, .. } => {
                // SSH_MSG_USERAUTH_PK_OK echoes the algorithm and the blob (section 7).
                let mut w = Writer::new();
                w.u8(crate::msg::USERAUTH_60).str(alg.name()).string(key.blob());
                t.send(&w.into_vec());
                Ok(false)
            }
            q => {
                self.method = Some(match q {
                    Question::Password { .. } => "password",
                    Question::PublicKey { .. } => "publickey",
                    Question::KeyboardInteractive { .. } => "keyboard-interactive",
                });
                t.send_msg(&Msg::UserauthSuccess);
                Ok(true)
            }
        }
    }
}

/// The algorithm and key of a publickey request, if both are usable together.
fn parse_key(alg: &str, blob: &[u8]) -> Option<(SigAlg, PublicKey)> {
    let alg = SigAlg::from_name(alg).filter(|a| user_alg_acceptable(a.name()))?;
    let key = PublicKey::from_blob(blob).ok()?;
    (alg.key_type() == key.key_type()).then_some((alg, key))
}
