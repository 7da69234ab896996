//! The key exchange as it runs on the wire, for both roles: KEXINIT and the negotiation of RFC
//! 4253 section 7.1 (with the guessed first packet), the ephemeral values and the exchange hash
//! of section 8 (client: verify the server's signature of H; server: sign H with the host key,
//! RSA only with rsa-sha2-256/512 unless asked otherwise), NEWKEYS and the six keys of section
//! 7.2 (which direction is which depends on the role), re-exchange (section 9), strict key
//! exchange (OpenSSH PROTOCOL section 1.10) and the server's EXT_INFO with `server-sig-algs`
//! right after its first NEWKEYS (RFC 8308 sections 2.4 and 3.1).

use std::time::Instant;

use super::negotiate::{client_kexinit, guess_wrong, negotiate, server_guess_wrong, negotiate_as_server, server_kexinit, EXT_INFO_C, STRICT_C, STRICT_S};
use super::{Event, KexState, Role, Transport, OUR_IDENT};
use crate::algs::{Cipher, Mac};
use crate::cipher::{DirectionKeys, Opener, Sealer};
use crate::error::Error;
use crate::kex::{derive_key, exchange_hash, server_respond, HashInput, KexPending, SharedSecret};
use crate::keys::PublicKey;
use crate::msg::Msg;
use crate::transport::Negotiated;

impl Transport {
    pub(super) fn send_kexinit(&mut self) {
        let mut cookie = [0u8; 16];
        self.rng.fill(&mut cookie);
        let first = !self.sent_first_kexinit;
        let k = match self.role() {
            Role::Client => client_kexinit(&self.prefs, cookie, first),
            Role::Server => server_kexinit(&self.prefs, cookie, first),
        };
        let payload = Msg::KexInit(Box::new(k)).encode();
        self.sent_first_kexinit = true;
        self.seal(&payload);
        self.kex = KexState::SentInit { ours: payload };
    }

    pub(super) fn on_kexinit(&mut self, seq: u32, payload: &[u8]) -> Result<(), Error> {
        let Msg::KexInit(theirs) = Msg::decode(payload)? else {
            return Err(Error::internal("KEXINIT decode"));
        };
        let peer = self.role().peer_name();
        let first = !self.keys_in_place && self.session_id.is_none();
        if first {
            // The marker counts in the peer's first KEXINIT only (PROTOCOL 1.10).
            let marker = match self.role() {
                Role::Client => STRICT_S,
                Role::Server => STRICT_C,
            };
            self.strict = theirs.kex.contains(&marker);
            self.strict_seen = self.strict;
            if self.strict && seq != 0 {
                return Err(Error::StrictKex(format!("{peer} KEXINIT was packet {seq}, not the first")));
            }
            if self.require_strict && !self.strict {
                return Err(Error::Refused(format!(
                    "the {peer} does not offer strict key exchange ({marker}), which require_strict_kex demands \
                     against the Terrapin attack (CVE-2023-48795)"
                )));
            }
            if self.role() == Role::Server {
                self.peer_ext_info = theirs.kex.contains(&EXT_INFO_C);
            }
        }
        if matches!(self.kex, KexState::Idle) {
            // The peer started a re-exchange: answer with our KEXINIT.
            self.send_kexinit();
        }
        let ours = match std::mem::replace(&mut self.kex, KexState::Idle) {
            KexState::SentInit { ours } => ours,
            _ => return Err(Error::internal("KEXINIT in wrong state")),
        };
        let Msg::KexInit(our_lists) = Msg::decode(&ours)? else {
            return Err(Error::internal("our KEXINIT"));
        };
        let negotiated = match self.role() {
            Role::Client => negotiate(&self.prefs, &theirs)?,
            Role::Server => negotiate_as_server(&our_lists, &theirs)?,
        };
        let wrong = match self.role() {
            // A guessing client is judged as OpenSSH's sshd does (both sides' first choices);
            // a guessing server (rare) by whether its first choices were negotiated.
            Role::Server => guess_wrong(&our_lists, &theirs),
            Role::Client => server_guess_wrong(&theirs, &negotiated),
        };
        if theirs.first_kex_follows && wrong {
            self.ignore_next_kex_packet = true;
        }
        let pending = match self.role() {
            Role::Client => {
                let pending = KexPending::start(negotiated.kex, self.rng.as_mut())?;
                self.seal(&Msg::KexInitValue { value: &pending.client_value }.encode());
                Some(pending)
            }
            // The server waits for the client's value.
            Role::Server => None,
        };
        self.kex = KexState::AwaitReply { ours, theirs: payload.to_vec(), negotiated, pending };
        Ok(())
    }

    /// Client: the server's KEX_REPLY (K_S, its value, the signature of H).
    pub(super) fn on_kex_reply(&mut self, payload: &[u8]) -> Result<(), Error> {
        if self.ignore_next_kex_packet {
            self.ignore_next_kex_packet = false;
            return Ok(());
        }
        let Msg::KexReply { host_key, value, signature } = Msg::decode(payload)? else {
            return Err(Error::internal("KEX_REPLY decode"));
        };
        let KexState::AwaitReply { ours, theirs, negotiated, pending: Some(pending) } =
            std::mem::replace(&mut self.kex, KexState::Idle)
        else {
            return Err(Error::internal("KEX_REPLY in wrong state"));
        };
        let key = PublicKey::from_blob(host_key)
            .map_err(|e| Error::HostKeyRejected(format!("server host key unusable: {e}")))?;
        if key.key_type() != negotiated.host_key.key_type() {
            return Err(Error::protocol(format!(
                "server sent a {} host key for negotiated algorithm {}",
                key.key_type(),
                negotiated.host_key
            )));
        }
        if let Some(first) = &self.host_key {
            if *first != key {
                return Err(Error::HostKeyRejected(format!(
                    "host key changed during re-exchange: was {}, now {}",
                    first.fingerprint(),
                    key.fingerprint()
                )));
            }
        }
        let client_value = pending.client_value.clone();
        let k = pending.finish(value)?;
        let h = exchange_hash(
            negotiated.kex,
            &HashInput {
                client_ident: OUR_IDENT.as_bytes(),
                server_ident: &self.peer_ident,
                client_kexinit: &ours,
                server_kexinit: &theirs,
                host_key,
                client_value: &client_value,
                server_value: value,
            },
            &k,
        );
        key.verify(negotiated.host_key, &h, signature)
            .map_err(|e| Error::crypto(format!("server's exchange-hash signature ({}) is invalid: {e}", negotiated.host_key)))?;
        if self.host_key.is_none() {
            log::info!(target: "sshbridge", "server host key {} {}", key.key_type(), key.fingerprint());
            // The key proved itself by signing the exchange hash: now judge whether it is the
            // host's, before NEWKEYS and so before any credential can be sent.
            self.decision = Some(self.host_key_check.decide(&key)?);
            self.host_key = Some(key);
        }
        self.send_newkeys(negotiated, &k, &h)
    }

    /// Server: the client's KEX_INIT value. Answer with our value, our host key and our
    /// signature of H, then NEWKEYS (and EXT_INFO after the first).
    pub(super) fn on_kex_init(&mut self, payload: &[u8]) -> Result<(), Error> {
        if self.ignore_next_kex_packet {
            self.ignore_next_kex_packet = false;
            return Ok(());
        }
        let Msg::KexInitValue { value } = Msg::decode(payload)? else {
            return Err(Error::internal("KEX_INIT decode"));
        };
        let KexState::AwaitReply { ours, theirs, negotiated, pending: None } =
            std::mem::replace(&mut self.kex, KexState::Idle)
        else {
            return Err(Error::internal("KEX_INIT in wrong state"));
        };
        let key = self
            .host_keys
            .iter()
            .find(|k| k.public_key().key_type() == negotiated.host_key.key_type())
            .cloned()
            .ok_or_else(|| Error::internal(format!("no host key for {}", negotiated.host_key)))?;
        let public = key.public_key();
        let (server_value, k) = server_respond(negotiated.kex, value, self.rng.as_mut())?;
        let h = exchange_hash(
            negotiated.kex,
            &HashInput {
                client_ident: &self.peer_ident,
                server_ident: OUR_IDENT.as_bytes(),
                client_kexinit: &theirs,
                server_kexinit: &ours,
                host_key: public.blob(),
                client_value: value,
                server_value: &server_value,
            },
            &k,
        );
        let signature = key.sign(negotiated.host_key, &h, self.rng.as_mut())?;
        self.seal(&Msg::KexReply { host_key: public.blob(), value: &server_value, signature: &signature }.encode());
        let first = self.session_id.is_none();
        self.send_newkeys(negotiated, &k, &h)?;
        if first && self.peer_ext_info {
            let algs = self.server_sig_algs_offer();
            self.seal(&Msg::ExtInfo { extensions: vec![("server-sig-algs", algs.as_bytes())] }.encode());
        }
        Ok(())
    }

    /// The user-key signature algorithms a server verifies (RFC 8308 section 3.1).
    fn server_sig_algs_offer(&self) -> String {
        let names: Vec<&str> =
            crate::algs::SigAlg::ALL.iter().map(|a| a.name()).filter(|n| super::negotiate::user_alg_acceptable(n)).collect();
        names.join(",")
    }

    /// Derive the keys from K and H, send NEWKEYS and encrypt from now on; the peer's NEWKEYS
    /// switches the other direction (`on_newkeys`).
    fn send_newkeys(&mut self, negotiated: Negotiated, k: &SharedSecret, h: &[u8]) -> Result<(), Error> {
        let session_id = self.session_id.get_or_insert_with(|| h.to_vec()).clone();
        let kx = negotiated.kex;
        let derive = |letter: u8, len: usize| derive_key(kx, k, h, letter, &session_id, len).to_vec();
        // Section 7.2: IV, key and MAC key letters per direction.
        let direction = |cipher: Cipher, mac: Option<Mac>, [iv, key, mac_key]: [u8; 3]| DirectionKeys {
            cipher,
            mac,
            iv: derive(iv, cipher.iv_len()),
            key: derive(key, cipher.key_len()),
            mac_key: mac.map(|m| derive(mac_key, m.key_len())).unwrap_or_default(),
        };
        let c2s = direction(negotiated.cipher_c2s, negotiated.mac_c2s, *b"ACE");
        let s2c = direction(negotiated.cipher_s2c, negotiated.mac_s2c, *b"BDF");
        let (tx, rx) = match self.role() {
            Role::Client => (c2s, s2c),
            Role::Server => (s2c, c2s),
        };
        self.seal(&Msg::NewKeys.encode());
        self.sealer = Sealer::new(&tx)?;
        if self.strict {
            self.tx_seq = 0;
        }
        self.since_kex_packets_tx = 0;
        self.kex = KexState::AwaitNewKeys { rx, negotiated };
        self.flush_queue();
        Ok(())
    }

    pub(super) fn on_newkeys(&mut self, payload: &[u8], now: Instant) -> Result<Event, Error> {
        Msg::decode(payload)?;
        let KexState::AwaitNewKeys { rx, negotiated } = std::mem::replace(&mut self.kex, KexState::Idle) else {
            return Err(Error::internal("NEWKEYS in wrong state"));
        };
        self.opener = Opener::new(&rx)?;
        if self.strict {
            self.rx_seq = 0;
        }
        let first = !self.keys_in_place;
        self.keys_in_place = true;
        self.negotiated = Some(negotiated);
        self.since_kex_bytes = 0;
        self.since_kex_packets_rx = 0;
        self.kex_started_at = now;
        self.kex_count = self.kex_count.saturating_add(1);
        if let Some(n) = &self.negotiated {
            crate::logging::negotiated(n, self.kex_count, self.strict);
        }
        self.flush_queue();
        Ok(Event::KexDone { first })
    }
}
