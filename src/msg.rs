//! Typed SSH messages: the message numbers of RFC 4250 section 4.1, with the layouts of
//! RFC 4253 sections 7, 8, 10, 11 (transport), RFC 8308 section 2.3 (EXT_INFO), RFC 4252
//! sections 5-8 and RFC 4256 section 3 (authentication), RFC 4254 sections 4-6 (connection).
//!
//! `Msg::decode` is the only place payload bytes become values; known messages must consume all
//! their bytes. Decoded messages borrow from the payload. `Msg::encode` is the inverse, used
//! for what we send and by tests that play the server.

use crate::error::Error;
use crate::wire::{Reader, Writer};

pub const DISCONNECT: u8 = 1;
pub const IGNORE: u8 = 2;
pub const UNIMPLEMENTED: u8 = 3;
pub const DEBUG: u8 = 4;
pub const SERVICE_REQUEST: u8 = 5;
pub const SERVICE_ACCEPT: u8 = 6;
pub const EXT_INFO: u8 = 7;
pub const KEXINIT: u8 = 20;
pub const NEWKEYS: u8 = 21;
pub const KEX_INIT: u8 = 30;
pub const KEX_REPLY: u8 = 31;
pub const USERAUTH_REQUEST: u8 = 50;
pub const USERAUTH_FAILURE: u8 = 51;
pub const USERAUTH_SUCCESS: u8 = 52;
pub const USERAUTH_BANNER: u8 = 53;
pub const USERAUTH_60: u8 = 60;
pub const USERAUTH_INFO_RESPONSE: u8 = 61;
pub const GLOBAL_REQUEST: u8 = 80;
pub const REQUEST_SUCCESS: u8 = 81;
pub const REQUEST_FAILURE: u8 = 82;
pub const CHANNEL_OPEN: u8 = 90;
pub const CHANNEL_OPEN_CONFIRMATION: u8 = 91;
pub const CHANNEL_OPEN_FAILURE: u8 = 92;
pub const CHANNEL_WINDOW_ADJUST: u8 = 93;
pub const CHANNEL_DATA: u8 = 94;
pub const CHANNEL_EXTENDED_DATA: u8 = 95;
pub const CHANNEL_EOF: u8 = 96;
pub const CHANNEL_CLOSE: u8 = 97;
pub const CHANNEL_REQUEST: u8 = 98;
pub const CHANNEL_SUCCESS: u8 = 99;
pub const CHANNEL_FAILURE: u8 = 100;

/// SSH_MSG_KEXINIT (RFC 4253 section 7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KexInit<'a> {
    pub cookie: [u8; 16],
    pub kex: Vec<&'a str>,
    pub host_key: Vec<&'a str>,
    pub cipher_c2s: Vec<&'a str>,
    pub cipher_s2c: Vec<&'a str>,
    pub mac_c2s: Vec<&'a str>,
    pub mac_s2c: Vec<&'a str>,
    pub comp_c2s: Vec<&'a str>,
    pub comp_s2c: Vec<&'a str>,
    pub lang_c2s: Vec<&'a str>,
    pub lang_s2c: Vec<&'a str>,
    pub first_kex_follows: bool,
    pub reserved: u32,
}

/// The method-specific part of SSH_MSG_USERAUTH_REQUEST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod<'a> {
    None,
    Password { password: &'a str },
    /// A password change (RFC 4252 section 8, the flag set): servers here refuse it.
    PasswordChange { old: &'a str, new: &'a str },
    /// `sig` absent: "would this key be acceptable?" (RFC 4252 section 7).
    PublicKey { alg: &'a str, key: &'a [u8], sig: Option<&'a [u8]> },
    KeyboardInteractive { submethods: &'a str },
    Other { name: &'a str, rest: &'a [u8] },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg<'a> {
    Disconnect { reason: u32, description: &'a [u8] },
    Ignore { data: &'a [u8] },
    Unimplemented { seq: u32 },
    Debug { always_display: bool, message: &'a [u8] },
    ServiceRequest { name: &'a str },
    ServiceAccept { name: &'a str },
    ExtInfo { extensions: Vec<(&'a str, &'a [u8])> },
    KexInit(Box<KexInit<'a>>),
    NewKeys,
    /// SSH_MSG_KEX_ECDH_INIT / SSH_MSG_KEXDH_INIT: Q_C, or e as an mpint body.
    KexInitValue { value: &'a [u8] },
    /// SSH_MSG_KEX_ECDH_REPLY / SSH_MSG_KEXDH_REPLY: K_S, Q_S (or f as an mpint body), signature.
    KexReply { host_key: &'a [u8], value: &'a [u8], signature: &'a [u8] },
    UserauthRequest { user: &'a str, service: &'a str, method: AuthMethod<'a> },
    UserauthFailure { methods: Vec<&'a str>, partial: bool },
    UserauthSuccess,
    UserauthBanner { message: &'a [u8] },
    /// Number 60 means PK_OK, PASSWD_CHANGEREQ or INFO_REQUEST depending on the method in
    /// progress; the authentication state machine parses the body.
    Userauth60 { body: &'a [u8] },
    UserauthInfoResponse { responses: Vec<&'a [u8]> },
    GlobalRequest { name: &'a str, want_reply: bool, data: &'a [u8] },
    RequestSuccess { data: &'a [u8] },
    RequestFailure,
    ChannelOpen { kind: &'a str, sender: u32, window: u32, max_packet: u32, extra: &'a [u8] },
    ChannelOpenConfirmation { recipient: u32, sender: u32, window: u32, max_packet: u32, extra: &'a [u8] },
    ChannelOpenFailure { recipient: u32, reason: u32, description: &'a [u8] },
    ChannelWindowAdjust { recipient: u32, bytes: u32 },
    ChannelData { recipient: u32, data: &'a [u8] },
    ChannelExtendedData { recipient: u32, code: u32, data: &'a [u8] },
    ChannelEof { recipient: u32 },
    ChannelClose { recipient: u32 },
    /// The request-specific data is parsed by the channel module.
    ChannelRequest { recipient: u32, kind: &'a str, want_reply: bool, data: &'a [u8] },
    ChannelSuccess { recipient: u32 },
    ChannelFailure { recipient: u32 },
    /// A message number we do not implement: answered with UNIMPLEMENTED.
    Unknown { number: u8 },
}

impl<'a> Msg<'a> {
    /// The message number of a payload, if it has one.
    pub fn number_of(payload: &[u8]) -> Option<u8> {
        payload.first().copied()
    }

    pub fn decode(payload: &'a [u8]) -> Result<Msg<'a>, Error> {
        let mut r = Reader::new(payload);
        let n = r.u8().map_err(|_| Error::protocol("empty packet payload"))?;
        let msg = match n {
            DISCONNECT => {
                let reason = r.u32()?;
                let description = r.string()?;
                let _lang = r.string()?;
                Msg::Disconnect { reason, description }
            }
            IGNORE => Msg::Ignore { data: r.string()? },
            UNIMPLEMENTED => Msg::Unimplemented { seq: r.u32()? },
            DEBUG => {
                let always_display = r.bool()?;
                let message = r.string()?;
                let _lang = r.string()?;
                Msg::Debug { always_display, message }
            }
            SERVICE_REQUEST => Msg::ServiceRequest { name: r.utf8()? },
            SERVICE_ACCEPT => Msg::ServiceAccept { name: r.utf8()? },
            EXT_INFO => {
                let count = r.u32()?;
                if count > 64 {
                    return Err(Error::protocol("EXT_INFO with too many extensions"));
                }
                let mut extensions = Vec::new();
                for _ in 0..count {
                    extensions.push((r.utf8()?, r.string()?));
                }
                Msg::ExtInfo { extensions }
            }
            KEXINIT => {
                let cookie = r.array::<16>()?;
                let k = KexInit {
                    cookie,
                    kex: r.name_list()?,
                    host_key: r.name_list()?,
                    cipher_c2s: r.name_list()?,
                    cipher_s2c: r.name_list()?,
                    mac_c2s: r.name_list()?,
                    mac_s2c: r.name_list()?,
                    comp_c2s: r.name_list()?,
                    comp_s2c: r.name_list()?,
                    lang_c2s: r.name_list()?,
                    lang_s2c: r.name_list()?,
                    first_kex_follows: r.bool()?,
                    reserved: r.u32()?,
                };
                Msg::KexInit(Box::new(k))
            }
            NEWKEYS => Msg::NewKeys,
            KEX_INIT => Msg::KexInitValue { value: r.string()? },
            KEX_REPLY => Msg::KexReply { host_key: r.string()?, value: r.string()?, signature: r.string()? },
            USERAUTH_REQUEST => {
                let user = r.utf8()?;
                let service = r.utf8()?;
                let method_name = r.utf8()?;
                let method = match method_name {
                    "none" => AuthMethod::None,
                    "password" => {
                        if r.bool()? {
                            AuthMethod::PasswordChange { old: r.utf8()?, new: r.utf8()? }
                        } else {
                            AuthMethod::Password { password: r.utf8()? }
                        }
                    }
                    "publickey" => {
                        let has_sig = r.bool()?;
                        let alg = r.utf8()?;
                        let key = r.string()?;
                        let sig = if has_sig { Some(r.string()?) } else { None };
                        AuthMethod::PublicKey { alg, key, sig }
                    }
                    "keyboard-interactive" => {
                        let _lang = r.string()?;
                        AuthMethod::KeyboardInteractive { submethods: r.utf8()? }
                    }
                    other => AuthMethod::Other { name: other, rest: r.rest() },
                };
                Msg::UserauthRequest { user, service, method }
            }
            USERAUTH_FAILURE => Msg::UserauthFailure { methods: r.name_list()?, partial: r.bool()? },
            USERAUTH_SUCCESS => Msg::UserauthSuccess,
            USERAUTH_BANNER => {
                let message = r.string()?;
                let _lang = r.string()?;
                Msg::UserauthBanner { message }
            }
            USERAUTH_60 => Msg::Userauth60 { body: r.rest() },
            USERAUTH_INFO_RESPONSE => {
                let count = r.u32()?;
                if count as usize > r.remaining() / 4 {
                    return Err(Error::protocol("INFO_RESPONSE count exceeds packet"));
                }
                let mut responses = Vec::new();
                for _ in 0..count {
                    responses.push(r.string()?);
                }
                Msg::UserauthInfoResponse { responses }
            }
            GLOBAL_REQUEST => Msg::GlobalRequest { name: r.utf8()?, want_reply: r.bool()?, data: r.rest() },
            REQUEST_SUCCESS => Msg::RequestSuccess { data: r.rest() },
            REQUEST_FAILURE => Msg::RequestFailure,
            CHANNEL_OPEN => Msg::ChannelOpen {
                kind: r.utf8()?,
                sender: r.u32()?,
                window: r.u32()?,
                max_packet: r.u32()?,
                extra: r.rest(),
            },
            CHANNEL_OPEN_CONFIRMATION => Msg::ChannelOpenConfirmation {
                recipient: r.u32()?,
                sender: r.u32()?,
                window: r.u32()?,
                max_packet: r.u32()?,
                extra: r.rest(),
            },
            CHANNEL_OPEN_FAILURE => {
                let recipient = r.u32()?;
                let reason = r.u32()?;
                let description = r.string()?;
                let _lang = r.string()?;
                Msg::ChannelOpenFailure { recipient, reason, description }
            }
            CHANNEL_WINDOW_ADJUST => Msg::ChannelWindowAdjust { recipient: r.u32()?, bytes: r.u32()? },
            CHANNEL_DATA => Msg::ChannelData { recipient: r.u32()?, data: r.string()? },
            CHANNEL_EXTENDED_DATA => {
                Msg::ChannelExtendedData { recipient: r.u32()?, code: r.u32()?, data: r.string()? }
            }
            CHANNEL_EOF => Msg::ChannelEof { recipient: r.u32()? },
            CHANNEL_CLOSE => Msg::ChannelClose { recipient: r.u32()? },
            CHANNEL_REQUEST => Msg::ChannelRequest {
                recipient: r.u32()?,
                kind: r.utf8()?,
                want_reply: r.bool()?,
                data: r.rest(),
            },
            CHANNEL_SUCCESS => Msg::ChannelSuccess { recipient: r.u32()? },
            CHANNEL_FAILURE => Msg::ChannelFailure { recipient: r.u32()? },
            number => return Ok(Msg::Unknown { number }),
        };
        r.finish().map_err(|e| match e {
            Error::Protocol(m) => Error::protocol(format!("message {n}: {m}")),
            other => other,
        })?;
        Ok(msg)
    }

    /// Encode into `w` (which should be empty: the payload starts with the message number).
    pub fn encode_into(&self, w: &mut Writer) {
        match self {
            Msg::Disconnect { reason, description } => {
                w.u8(DISCONNECT).u32(*reason).string(description).str("");
            }
            Msg::Ignore { data } => {
                w.u8(IGNORE).string(data);
            }
            Msg::Unimplemented { seq } => {
                w.u8(UNIMPLEMENTED).u32(*seq);
            }
            Msg::Debug { always_display, message } => {
                w.u8(DEBUG).bool(*always_display).string(message).str("");
            }
            Msg::ServiceRequest { name } => {
                w.u8(SERVICE_REQUEST).str(name);
            }
            Msg::ServiceAccept { name } => {
                w.u8(SERVICE_ACCEPT).str(name);
            }
            Msg::ExtInfo { extensions } => {
                w.u8(EXT_INFO).u32(u32::try_from(extensions.len()).unwrap_or(0));
                for (name, value) in extensions {
                    w.str(name).string(value);
                }
            }
            Msg::KexInit(k) => {
                w.u8(KEXINIT).raw(&k.cookie);
                for list in [
                    &k.kex, &k.host_key, &k.cipher_c2s, &k.cipher_s2c, &k.mac_c2s, &k.mac_s2c, &k.comp_c2s,
                    &k.comp_s2c, &k.lang_c2s, &k.lang_s2c,
                ] {
                    w.name_list(list);
                }
                w.bool(k.first_kex_follows).u32(k.reserved);
            }
            Msg::NewKeys => {
                w.u8(NEWKEYS);
            }
            Msg::KexInitValue { value } => {
                w.u8(KEX_INIT).string(value);
            }
            Msg::KexReply { host_key, value, signature } => {
                w.u8(KEX_REPLY).string(host_key).string(value).string(signature);
            }
            Msg::UserauthRequest { user, service, method } => {
                w.u8(USERAUTH_REQUEST).str(user).str(service);
                match method {
                    AuthMethod::None => {
                        w.str("none");
                    }
                    AuthMethod::Password { password } => {
                        w.str("password").bool(false).str(password);
                    }
                    AuthMethod::PasswordChange { old, new } => {
                        w.str("password").bool(true).str(old).str(new);
                    }
                    AuthMethod::PublicKey { alg, key, sig } => {
                        w.str("publickey").bool(sig.is_some()).str(alg).string(key);
                        if let Some(s) = sig {
                            w.string(s);
                        }
                    }
                    AuthMethod::KeyboardInteractive { submethods } => {
                        w.str("keyboard-interactive").str("").str(submethods);
                    }
                    AuthMethod::Other { name, rest } => {
                        w.str(name).raw(rest);
                    }
                }
            }
            Msg::UserauthFailure { methods, partial } => {
                w.u8(USERAUTH_FAILURE).name_list(methods).bool(*partial);
            }
            Msg::UserauthSuccess => {
                w.u8(USERAUTH_SUCCESS);
            }
            Msg::UserauthBanner { message } => {
                w.u8(USERAUTH_BANNER).string(message).str("");
            }
            Msg::Userauth60 { body } => {
                w.u8(USERAUTH_60).raw(body);
            }
            Msg::UserauthInfoResponse { responses } => {
                w.u8(USERAUTH_INFO_RESPONSE).u32(u32::try_from(responses.len()).unwrap_or(0));
                for resp in responses {
                    w.string(resp);
                }
            }
            Msg::GlobalRequest { name, want_reply, data } => {
                w.u8(GLOBAL_REQUEST).str(name).bool(*want_reply).raw(data);
            }
            Msg::RequestSuccess { data } => {
                w.u8(REQUEST_SUCCESS).raw(data);
            }
            Msg::RequestFailure => {
                w.u8(REQUEST_FAILURE);
            }
            Msg::ChannelOpen { kind, sender, window, max_packet, extra } => {
                w.u8(CHANNEL_OPEN).str(kind).u32(*sender).u32(*window).u32(*max_packet).raw(extra);
            }
            Msg::ChannelOpenConfirmation { recipient, sender, window, max_packet, extra } => {
                w.u8(CHANNEL_OPEN_CONFIRMATION).u32(*recipient).u32(*sender).u32(*window).u32(*max_packet).raw(extra);
            }
            Msg::ChannelOpenFailure { recipient, reason, description } => {
                w.u8(CHANNEL_OPEN_FAILURE).u32(*recipient).u32(*reason).string(description).str("");
            }
            Msg::ChannelWindowAdjust { recipient, bytes } => {
                w.u8(CHANNEL_WINDOW_ADJUST).u32(*recipient).u32(*bytes);
            }
            Msg::ChannelData { recipient, data } => {
                w.u8(CHANNEL_DATA).u32(*recipient).string(data);
            }
            Msg::ChannelExtendedData { recipient, code, data } => {
                w.u8(CHANNEL_EXTENDED_DATA).u32(*recipient).u32(*code).string(data);
            }
            Msg::ChannelEof { recipient } => {
                w.u8(CHANNEL_EOF).u32(*recipient);
            }
            Msg::ChannelClose { recipient } => {
                w.u8(CHANNEL_CLOSE).u32(*recipient);
            }
            Msg::ChannelRequest { recipient, kind, want_reply, data } => {
                w.u8(CHANNEL_REQUEST).u32(*recipient).str(kind).bool(*want_reply).raw(data);
            }
            Msg::ChannelSuccess { recipient } => {
                w.u8(CHANNEL_SUCCESS).u32(*recipient);
            }
            Msg::ChannelFailure { recipient } => {
                w.u8(CHANNEL_FAILURE).u32(*recipient);
            }
            Msg::Unknown { number } => {
                w.u8(*number);
            }
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode_into(&mut w);
        w.into_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Msg<'static>> {
        vec![
            Msg::Disconnect { reason: 2, description: b"bye" },
            Msg::Ignore { data: b"xx" },
            Msg::Unimplemented { seq: 9 },
            Msg::Debug { always_display: true, message: b"dbg" },
            Msg::ServiceRequest { name: "ssh-userauth" },
            Msg::ServiceAccept { name: "ssh-userauth" },
            Msg::ExtInfo { extensions: vec![("server-sig-algs", b"rsa-sha2-256,ssh-ed25519")] },
            Msg::KexInit(Box::new(KexInit {
                cookie: [3; 16],
                kex: vec!["curve25519-sha256", "kex-strict-s-v00@openssh.com"],
                host_key: vec!["ssh-ed25519"],
                cipher_c2s: vec!["aes128-ctr"],
                cipher_s2c: vec!["aes128-ctr"],
                mac_c2s: vec!["hmac-sha2-256"],
                mac_s2c: vec!["hmac-sha2-256"],
                comp_c2s: vec!["none"],
                comp_s2c: vec!["none"],
                lang_c2s: vec![],
                lang_s2c: vec![],
                first_kex_follows: false,
                reserved: 0,
            })),
            Msg::NewKeys,
            Msg::KexInitValue { value: &[1, 2, 3] },
            Msg::KexReply { host_key: b"k", value: b"q", signature: b"s" },
            Msg::UserauthRequest { user: "u", service: "ssh-connection", method: AuthMethod::None },
            Msg::UserauthRequest {
                user: "u",
                service: "ssh-connection",
                method: AuthMethod::Password { password: "pw" },
            },
            Msg::UserauthRequest {
                user: "u",
                service: "ssh-connection",
                method: AuthMethod::PublicKey { alg: "ssh-ed25519", key: b"key", sig: Some(b"sig") },
            },
            Msg::UserauthRequest {
                user: "u",
                service: "ssh-connection",
                method: AuthMethod::PublicKey { alg: "ssh-ed25519", key: b"key", sig: None },
            },
            Msg::UserauthRequest {
                user: "u",
                service: "ssh-connection",
                method: AuthMethod::KeyboardInteractive { submethods: "" },
            },
            Msg::UserauthFailure { methods: vec!["publickey", "password"], partial: false },
            Msg::UserauthSuccess,
            Msg::UserauthBanner { message: b"hello" },
            Msg::Userauth60 { body: &[0, 0, 0, 1, b'x'] },
            Msg::UserauthInfoResponse { responses: vec![b"pw"] },
            Msg::GlobalRequest { name: "keepalive@openssh.com", want_reply: true, data: &[] },
            Msg::RequestSuccess { data: &[] },
            Msg::RequestFailure,
            Msg::ChannelOpen { kind: "session", sender: 0, window: 1 << 21, max_packet: 32768, extra: &[] },
            Msg::ChannelOpenConfirmation { recipient: 0, sender: 5, window: 100, max_packet: 200, extra: &[] },
            Msg::ChannelOpenFailure { recipient: 0, reason: 1, description: b"no" },
            Msg::ChannelWindowAdjust { recipient: 0, bytes: 1000 },
            Msg::ChannelData { recipient: 0, data: b"data" },
            Msg::ChannelExtendedData { recipient: 0, code: 1, data: b"err" },
            Msg::ChannelEof { recipient: 0 },
            Msg::ChannelClose { recipient: 0 },
            Msg::ChannelRequest { recipient: 0, kind: "exec", want_reply: true, data: &[0, 0, 0, 1, b'x'] },
            Msg::ChannelSuccess { recipient: 0 },
            Msg::ChannelFailure { recipient: 0 },
            Msg::Unknown { number: 200 },
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for m in samples() {
            let bytes = m.encode();
            assert_eq!(Msg::decode(&bytes).unwrap(), m, "{m:?}");
        }
    }

    /// Every strict prefix of a fixed-layout message fails to decode, and a trailing byte is
    /// rejected: known messages consume exactly their bytes.
    #[test]
    fn truncations_and_trailing_bytes_rejected() {
        for m in samples() {
            let bytes = m.encode();
            let open_ended = matches!(
                m,
                Msg::Userauth60 { .. }
                    | Msg::GlobalRequest { .. }
                    | Msg::RequestSuccess { .. }
                    | Msg::ChannelOpen { .. }
                    | Msg::ChannelOpenConfirmation { .. }
                    | Msg::ChannelRequest { .. }
                    | Msg::Unknown { .. }
                    | Msg::NewKeys
                    | Msg::UserauthSuccess
                    | Msg::RequestFailure
            );
            if open_ended {
                continue;
            }
            for cut in 0..bytes.len() {
                assert!(Msg::decode(&bytes[..cut]).is_err(), "{m:?} cut at {cut}");
            }
            let mut extra = bytes.clone();
            extra.push(0);
            assert!(Msg::decode(&extra).is_err(), "{m:?} with a trailing byte");
        }
    }

    #[test]
    fn hostile_counts_do_not_allocate() {
        let mut w = Writer::new();
        w.u8(USERAUTH_INFO_RESPONSE).u32(u32::MAX);
        assert!(Msg::decode(&w.buf).is_err());
        let mut w = Writer::new();
        w.u8(EXT_INFO).u32(u32::MAX);
        assert!(Msg::decode(&w.buf).is_err());
    }
}
