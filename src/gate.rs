//! Which message numbers each state accepts: the one place that decides (RFC 4253 sections
//! 7.1 and 11, RFC 4252 section 6, RFC 4254 section 1, RFC 8308 section 2.4, OpenSSH PROTOCOL
//! section 1.10 for strict key exchange). Everything that reaches a handler has passed here.

use crate::error::Error;
use crate::msg;

/// Where the key exchange stands, as far as inbound messages are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KexStage {
    /// Keys in place, no exchange running.
    Idle,
    /// An exchange runs and the server's KEXINIT has not arrived yet.
    AwaitKexInit,
    /// The server's KEXINIT arrived; waiting for its reply to our KEX_INIT value.
    AwaitReply,
    /// We sent NEWKEYS; waiting for the server's.
    AwaitNewKeys,
}

/// Where the user-authentication / connection layer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// ssh-userauth requested, SERVICE_ACCEPT not seen yet.
    Requested,
    /// Authenticating.
    Auth,
    /// USERAUTH_SUCCESS seen: the connection protocol runs.
    Connected,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GateState {
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
    // Key-exchange messages, in any phase.
    match (n, st.kex) {
        (msg::KEXINIT, KexStage::Idle | KexStage::AwaitKexInit) => return Accept,
        (msg::KEXINIT, _) => return reject(st, n, "(second KEXINIT in one key exchange)"),
        (msg::KEX_REPLY, KexStage::AwaitReply) => return Accept,
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
        // RFC 4253 section 7.1: after sending KEXINIT the server sends only key-exchange
        // (and generic transport) messages until its NEWKEYS.
        return reject(st, n, "during key re-exchange");
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

#[cfg(test)]
mod tests {
    use super::*;

    fn st(kex: KexStage, initial: bool, strict: bool, service: Service) -> GateState {
        GateState { kex, initial, strict, service }
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
