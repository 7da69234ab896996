//! Which message numbers each state accepts, for either role: the one place that decides (RFC
//! 4253 sections 7.1, 10 and 11, RFC 4252 sections 5 and 6, RFC 4254 section 1, RFC 8308
//! section 2.4, OpenSSH PROTOCOL section 1.10 for strict key exchange). Everything that reaches
//! a handler has passed here. A server refuses what only a server may send (the libssh
//! USERAUTH_SUCCESS bypass, CVE-2018-10933) and every connection message before
//! authentication (Erlang/OTP, CVE-2025-32433).

use crate::error::Error;
use crate::msg;

/// Where the key exchange stands, as far as inbound messages are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KexStage {
    /// Keys in place, no exchange running.
    Idle,
    /// An exchange runs and the peer's KEXINIT has not arrived yet.
    AwaitKexInit,
    /// The peer's KEXINIT arrived; the client waits for KEX_REPLY, the server for KEX_INIT.
    AwaitReply,
    /// We sent NEWKEYS; waiting for the peer's.
    AwaitNewKeys,
}

/// Where the user-authentication / connection layer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Client: ssh-userauth requested, SERVICE_ACCEPT not seen yet. Server: no
    /// SERVICE_REQUEST accepted yet.
    Requested,
    /// Authenticating.
    Auth,
    /// USERAUTH_SUCCESS seen: the connection protocol runs.
    Connected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateState {
    /// We are the server (the peer is a client).
    pub server: bool,
    pub kex: KexStage,
    /// No NEWKEYS received yet: the initial, unencrypted exchange.
    pub initial: bool,
    pub strict: bool,
    pub service: Service,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// Valid but of no interest here (dropped silently).
    Ignore,
    /// Answer with SSH_MSG_UNIMPLEMENTED carrying the packet's sequence number.
    Unimplemented,
    Reject(Error),
}

fn reject(st: &GateState, n: u8, why: &str) -> Verdict {
    if st.strict && st.initial {
        Verdict::Reject(Error::StrictKex(format!("message {n} {why}")))
    } else {
        Verdict::Reject(Error::protocol(format!("unexpected message {n} {why}")))
    }
}

pub fn gate(st: &GateState, n: u8) -> Verdict {
    use Verdict::*;
    if n == msg::DISCONNECT {
        return Accept;
    }
    // Key-exchange messages, in any phase. The client gets KEX_REPLY, the server KEX_INIT.
    let reply = if st.server { msg::KEX_INIT } else { msg::KEX_REPLY };
    match (n, st.kex) {
        (msg::KEXINIT, KexStage::Idle | KexStage::AwaitKexInit) => return Accept,
        (msg::KEXINIT, _) => return reject(st, n, "(second KEXINIT in one key exchange)"),
        (m, KexStage::AwaitReply) if m == reply => return Accept,
        (msg::NEWKEYS, KexStage::AwaitNewKeys) => return Accept,
        (msg::NEWKEYS | msg::KEX_INIT | msg::KEX_REPLY, _) | (22..=29 | 32..=49, KexStage::AwaitReply) => {
            return reject(st, n, "out of key-exchange order")
        }
        _ => {}
    }
    if st.initial {
        // Before the first NEWKEYS only generic transport messages may interleave, and under
        // strict KEX not even those.
        return match n {
            msg::IGNORE | msg::DEBUG | msg::UNIMPLEMENTED if !st.strict => Accept,
            _ => reject(st, n, "during the initial key exchange"),
        };
    }
    if matches!(st.kex, KexStage::AwaitReply | KexStage::AwaitNewKeys) && n >= 5 {
        // RFC 4253 section 7.1: after sending KEXINIT the peer sends only key-exchange (and
        // generic transport) messages until its NEWKEYS.
        return reject(st, n, "during key re-exchange");
    }
    if st.server {
        return server_gate(st, n);
    }
    match n {
        msg::IGNORE | msg::DEBUG | msg::UNIMPLEMENTED => Accept,
        msg::SERVICE_REQUEST => reject(st, n, "(SERVICE_REQUEST from a server)"),
        msg::SERVICE_ACCEPT if st.service == Service::Requested => Accept,
        msg::SERVICE_ACCEPT => reject(st, n, "(SERVICE_ACCEPT not requested)"),
        msg::EXT_INFO if st.service != Service::Connected => Accept,
        msg::EXT_INFO => Ignore,
        8..=19 | 22..=29 | 32..=49 => Unimplemented,
        msg::USERAUTH_REQUEST | msg::USERAUTH_INFO_RESPONSE => reject(st, n, "(client-only message from server)"),
        msg::USERAUTH_FAILURE | msg::USERAUTH_SUCCESS | msg::USERAUTH_BANNER | msg::USERAUTH_60 => match st.service {
            Service::Auth => Accept,
            Service::Connected if n == msg::USERAUTH_BANNER => Ignore,
            Service::Connected => reject(st, n, "after authentication succeeded"),
            Service::Requested => reject(st, n, "before SERVICE_ACCEPT"),
        },
        54..=59 | 62..=79 => Unimplemented,
        msg::GLOBAL_REQUEST..=msg::CHANNEL_FAILURE => match st.service {
            Service::Connected => Accept,
            _ => reject(st, n, "(connection protocol) before authentication"),
        },
        _ => Unimplemented,
    }
}

/// What a server accepts from a client once the first key exchange is done.
fn server_gate(st: &GateState, n: u8) -> Verdict {
    use Verdict::*;
    let connected = st.service == Service::Connected;
    match n {
        msg::IGNORE | msg::DEBUG | msg::UNIMPLEMENTED => Accept,
        // One SERVICE_REQUEST, for ssh-userauth (checked by the server), and only one.
        msg::SERVICE_REQUEST if st.service == Service::Requested => Accept,
        msg::SERVICE_REQUEST => reject(st, n, "(a second SERVICE_REQUEST)"),
        msg::SERVICE_ACCEPT => reject(st, n, "(server-only message from the client)"),
        // We never offer ext-info-s: a client's EXT_INFO is of no use, but harmless.
        msg::EXT_INFO => Ignore,
        8..=19 | 22..=29 | 32..=49 => Unimplemented,
        msg::USERAUTH_REQUEST => match st.service {
            Service::Auth => Accept,
            // RFC 4252 section 5.1: requests after success are ignored, never re-authenticate.
            Service::Connected => Ignore,
            Service::Requested => reject(st, n, "before the ssh-userauth service was requested"),
        },
        msg::USERAUTH_INFO_RESPONSE if st.service == Service::Auth => Accept,
        msg::USERAUTH_INFO_RESPONSE => reject(st, n, "outside authentication"),
        msg::USERAUTH_FAILURE | msg::USERAUTH_SUCCESS | msg::USERAUTH_BANNER | msg::USERAUTH_60 => {
            reject(st, n, "(server-only message from the client)")
        }
        54..=59 | 62..=79 => Unimplemented,
        msg::GLOBAL_REQUEST..=127 if !connected => reject(st, n, "(connection protocol) before authentication"),
        msg::GLOBAL_REQUEST..=msg::CHANNEL_FAILURE => Accept,
        _ => Unimplemented,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(kex: KexStage, initial: bool, strict: bool, service: Service) -> GateState {
        GateState { server: false, kex, initial, strict, service }
    }

    fn srv(kex: KexStage, initial: bool, strict: bool, service: Service) -> GateState {
        GateState { server: true, kex, initial, strict, service }
    }

    /// The server's table: every message number in every state.
    #[test]
    fn server_acceptance_table() {
        let stages = [KexStage::Idle, KexStage::AwaitKexInit, KexStage::AwaitReply, KexStage::AwaitNewKeys];
        let services = [Service::Requested, Service::Auth, Service::Connected];
        for kex in stages {
            for initial in [true, false] {
                for strict in [true, false] {
                    for service in services {
                        let s = srv(kex, initial, strict, service);
                        for n in 0..=255u8 {
                            let v = gate(&s, n);
                            if n == 1 {
                                assert_eq!(v, Verdict::Accept);
                            }
                            // Client-only... from a client is fine; server-only messages never.
                            if matches!(n, 6 | 31 | 51 | 52 | 53 | 60) {
                                assert!(matches!(v, Verdict::Reject(_)), "{s:?} {n}: {v:?}");
                            }
                            // Nothing of the connection protocol before authentication.
                            if (80..=127).contains(&n) && service != Service::Connected {
                                assert!(matches!(v, Verdict::Reject(_)), "{s:?} {n}: {v:?}");
                            }
                            if (80..=100).contains(&n) && v == Verdict::Accept {
                                assert!(service == Service::Connected && !initial);
                            }
                            // Before the first NEWKEYS only the key exchange (strict: nothing else).
                            if initial && !matches!(n, 1 | 20 | 21 | 30) {
                                assert!(matches!(v, Verdict::Reject(_)) || (!strict && matches!(n, 2..=4)), "{s:?} {n}: {v:?}");
                            }
                            if strict && initial && !matches!(n, 1 | 20 | 21 | 30) {
                                assert!(matches!(v, Verdict::Reject(Error::StrictKex(_))), "{s:?} {n}: {v:?}");
                            }
                            // The client's KEX_INIT value only while we wait for it.
                            if n == 30 {
                                assert_eq!(v == Verdict::Accept, kex == KexStage::AwaitReply);
                            }
                            // SERVICE_REQUEST once, after the first NEWKEYS.
                            if n == 5 {
                                let ok = !initial && service == Service::Requested && matches!(kex, KexStage::Idle | KexStage::AwaitKexInit);
                                assert_eq!(v == Verdict::Accept, ok, "{s:?}");
                            }
                            // Authentication requests only while authenticating; ignored after.
                            if n == 50 && !initial && matches!(kex, KexStage::Idle | KexStage::AwaitKexInit) {
                                let want = match service {
                                    Service::Auth => Verdict::Accept,
                                    Service::Connected => Verdict::Ignore,
                                    Service::Requested => Verdict::Reject(Error::protocol("x")),
                                };
                                assert_eq!(std::mem::discriminant(&v), std::mem::discriminant(&want), "{s:?}");
                            }
                        }
                    }
                }
            }
        }
        let s = srv(KexStage::Idle, false, true, Service::Connected);
        for n in [8u8, 40, 101, 127, 128, 200, 255] {
            assert_eq!(gate(&s, n), Verdict::Unimplemented, "{n}");
        }
    }

    /// Every message number in every state: the table the rest of the client relies on.
    #[test]
    fn acceptance_table() {
        let stages = [KexStage::Idle, KexStage::AwaitKexInit, KexStage::AwaitReply, KexStage::AwaitNewKeys];
        let services = [Service::Requested, Service::Auth, Service::Connected];
        for kex in stages {
            for initial in [true, false] {
                for strict in [true, false] {
                    for service in services {
                        let s = st(kex, initial, strict, service);
                        for n in 0..=255u8 {
                            let v = gate(&s, n);
                            // DISCONNECT is always honoured.
                            if n == 1 {
                                assert_eq!(v, Verdict::Accept);
                            }
                            // Strict initial exchange: only kex messages and DISCONNECT pass.
                            if strict && initial && !matches!(n, 1 | 20 | 21 | 31) {
                                assert!(matches!(v, Verdict::Reject(Error::StrictKex(_))), "{s:?} {n}: {v:?}");
                            }
                            // Nothing but kex/transport messages before the first NEWKEYS.
                            if initial && n >= 5 && !matches!(n, 20 | 21 | 31) {
                                assert!(matches!(v, Verdict::Reject(_)), "{s:?} {n}: {v:?}");
                            }
                            // Connection messages only once authenticated.
                            if (80..=100).contains(&n) && v == Verdict::Accept {
                                assert_eq!(service, Service::Connected);
                                assert!(!initial);
                            }
                            // Auth replies only while authenticating.
                            if matches!(n, 51 | 52 | 60) && v == Verdict::Accept {
                                assert_eq!(service, Service::Auth);
                            }
                            // NEWKEYS / KEX_REPLY only in their stage.
                            if n == 21 {
                                assert_eq!(v == Verdict::Accept, kex == KexStage::AwaitNewKeys);
                            }
                            if n == 31 {
                                assert_eq!(v == Verdict::Accept, kex == KexStage::AwaitReply);
                            }
                            if n == 30 || n == 50 || n == 61 || n == 5 {
                                assert!(matches!(v, Verdict::Reject(_)));
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn unknown_numbers_get_unimplemented_once_encrypted() {
        let s = st(KexStage::Idle, false, true, Service::Connected);
        for n in [8u8, 40, 101, 127, 128, 200, 255] {
            assert_eq!(gate(&s, n), Verdict::Unimplemented, "{n}");
        }
        assert_eq!(gate(&s, 2), Verdict::Accept);
        assert_eq!(gate(&s, 20), Verdict::Accept);
        assert!(matches!(gate(&s, 52), Verdict::Reject(_)), "a second USERAUTH_SUCCESS");
        // Non-strict initial exchange tolerates IGNORE and DEBUG; strict does not.
        assert_eq!(gate(&st(KexStage::AwaitReply, true, false, Service::Requested), 2), Verdict::Accept);
        assert!(matches!(gate(&st(KexStage::AwaitReply, true, true, Service::Requested), 2), Verdict::Reject(Error::StrictKex(_))));
        // Rekey: data in flight before the server's KEXINIT is fine, after it is not.
        assert_eq!(gate(&st(KexStage::AwaitKexInit, false, true, Service::Connected), 94), Verdict::Accept);
        assert!(matches!(gate(&st(KexStage::AwaitReply, false, true, Service::Connected), 94), Verdict::Reject(_)));
    }
}
