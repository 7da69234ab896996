//! Connection settings of the blocking API and what a connection reports about itself.

use std::sync::Arc;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::algs::Preferences;
use crate::auth::Credential;
use crate::keys::{PrivateKey, PublicKey};
use crate::transport::{Negotiated, RekeyLimits};
use crate::trust::HostKeyPolicy;

/// Connection settings for the blocking API.
#[derive(Clone, Debug)]
pub struct Config {
    pub user: String,
    /// Tried in order.
    pub credentials: Vec<Credential>,
    /// Pinned host keys: shorthand for `HostKeyPolicy::Pinned`; with the default policy
    /// (`AcceptAny`) an empty list accepts any host key (no verification).
    pub host_keys: Vec<PublicKey>,
    /// How the host key is judged: pinned keys, known_hosts files, an application verifier, or
    /// `AcceptAny` (the default, today's behaviour with no `host_keys`).
    pub host_key_policy: HostKeyPolicy,
    /// Look the host key up (and record it) under this name instead of the host connected to
    /// (OpenSSH's HostKeyAlias).
    pub host_key_alias: Option<String>,
    /// Algorithm preferences (restrict with `Preferences::restrict`).
    pub algorithms: Preferences,
    pub rekey: RekeyLimits,
    /// TCP connect timeout (default 10 s).
    pub connect_timeout: Duration,
    /// Key exchange plus authentication must finish within this (default 30 s), so a silent
    /// server cannot hang the caller.
    pub handshake_timeout: Duration,
    /// Authentication alone must finish within this once the keys are in place (default 30 s;
    /// the handshake timeout bounds it too).
    pub auth_timeout: Duration,
    /// Send keepalive@openssh.com after this long without hearing from the server, and declare
    /// it dead after `keepalive_max` unanswered ones (default 15 s and 3: a frozen server is
    /// detected in about 60 s; any packet from the server counts as an answer). `None` turns
    /// it off.
    pub keepalive_interval: Option<Duration>,
    pub keepalive_max: u32,
    /// Refuse a server that does not offer strict key exchange (`kex-strict-s-v00@openssh.com`,
    /// the Terrapin fix, CVE-2023-48795), before authentication. Off by default: TinySSH
    /// 20230101 and other older servers lack it.
    pub require_strict_kex: bool,
    /// Enable TCP keepalive (SO_KEEPALIVE) on the connection socket (default on, like
    /// OpenSSH's `TCPKeepAlive yes`).
    pub tcp_keepalive: bool,
    /// Longest wait for any single operation after the handshake (`None`: wait forever).
    pub io_timeout: Option<Duration>,
    /// Accept a server that admits us with the "none" method (default true).
    pub allow_none_auth: bool,
    /// Most channels open at once on the connection (default 1024).
    pub max_channels: usize,
    /// Log packet payloads as hex at trace level (default off; never key material).
    pub log_payloads: bool,
    /// This connection's records (debug and above) also go here (`LogSink`).
    pub log_sink: Option<crate::logging::LogSink>,
    /// Environment variables sent (RFC 4254 section 6.4 `env`) on every session channel
    /// before its command: by `Session::exec`, `exec_bytes` and `shell`, and by
    /// `Session::open_session` before it returns the channel. A variable the server refuses
    /// (its AcceptEnv does not list it) is logged and skipped, as OpenSSH's SendEnv/SetEnv do.
    /// Empty by default (`Config::capsule` sets HOST, LANG, TZ).
    pub env: Vec<(String, String)>,
}

impl Config {
    pub fn new(user: impl Into<String>) -> Config {
        Config {
            user: user.into(),
            credentials: Vec::new(),
            host_keys: Vec::new(),
            host_key_policy: HostKeyPolicy::AcceptAny,
            host_key_alias: None,
            algorithms: Preferences::default(),
            rekey: RekeyLimits::default(),
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(30),
            auth_timeout: Duration::from_secs(30),
            keepalive_interval: Some(crate::client::DEFAULT_KEEPALIVE_INTERVAL),
            keepalive_max: crate::client::DEFAULT_KEEPALIVE_MAX,
            require_strict_kex: false,
            tcp_keepalive: true,
            io_timeout: None,
            allow_none_auth: true,
            max_channels: crate::connection::DEFAULT_MAX_CHANNELS,
            log_payloads: false,
            log_sink: None,
            env: Vec::new(),
        }
    }
}

impl Credential {
    pub fn password(pw: &str) -> Credential {
        Credential::Password(Arc::new(Zeroizing::new(pw.to_string())))
    }
    pub fn key(key: PrivateKey) -> Credential {
        Credential::Key(Arc::new(key))
    }
}

/// What was agreed with the server, for logging and tests.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub server_ident: String,
    pub negotiated: Negotiated,
    pub strict_kex: bool,
    pub host_key: PublicKey,
    pub banner: String,
    pub kex_count: u32,
    /// The session identifier (the first exchange hash, RFC 4253 section 7.2).
    pub session_id: Vec<u8>,
    /// Bytes of network buffer the connection holds right now (input and output capacity):
    /// grows during bulk transfers, back to a few KiB about a second after the network went
    /// quiet.
    pub buffer_bytes: usize,
}

