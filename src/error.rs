//! The crate's one error type. Each variant says what happened in terms of what the caller must
//! do; its `Display` text is what lands in `db_error` for the C API, so it is specific, bounded
//! and free of control characters (RFC 4251 section 9.2 on displaying peer text).

use std::fmt;

/// Longest peer-provided text we keep (DISCONNECT reasons, banners, DEBUG messages).
pub const MAX_PEER_TEXT: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The peer broke the protocol (bad framing, unexpected message, malformed field).
    Protocol(String),
    /// The server does not speak SSH protocol 2.0 (RFC 4253 section 4.2).
    VersionNotSupported(String),
    /// Strict key exchange (OpenSSH PROTOCOL 1.10, CVE-2023-48795) was violated.
    StrictKex(String),
    /// The server lacks something the configuration requires (e.g. `require_strict_kex`).
    Refused(String),
    /// The server sent SSH_MSG_DISCONNECT.
    Disconnected { reason: u32, description: String },
    /// Nothing in common for one algorithm category during KEXINIT negotiation.
    NoCommonAlgorithm { category: &'static str, ours: String, theirs: String },
    /// A cryptographic check failed: MAC, AEAD tag, signature, invalid kex value.
    Crypto(String),
    /// The host key is not the one the caller pinned, or is unusable.
    HostKeyRejected(String),
    /// No authentication method succeeded.
    AuthFailed { tried: Vec<String>, allowed: Vec<String> },
    /// The server refused to open our channel.
    ChannelOpenFailed { reason: u32, description: String },
    /// The server refused a channel request (exec, shell, ...).
    ChannelRequestFailed(String),
    /// A private or public key could not be used.
    Key(String),
    /// A deadline passed.
    Timeout(String),
    /// The TCP connection ended.
    ConnectionClosed(String),
    /// An operating-system I/O error.
    Io { kind: std::io::ErrorKind, message: String },
    /// The caller passed something unusable.
    BadArgument(String),
    /// A bug in this library (a caught panic, a broken invariant).
    Internal(String),
}

impl Error {
    pub fn protocol(msg: impl Into<String>) -> Self {
        Error::Protocol(msg.into())
    }
    pub fn crypto(msg: impl Into<String>) -> Self {
        Error::Crypto(msg.into())
    }
    pub fn key(msg: impl Into<String>) -> Self {
        Error::Key(msg.into())
    }
    pub fn internal(msg: impl Into<String>) -> Self {
        Error::Internal(msg.into())
    }
    pub fn bad_argument(msg: impl Into<String>) -> Self {
        Error::BadArgument(msg.into())
    }

    /// The DISCONNECT reason code (RFC 4253 section 11.1) to send the peer for this error.
    pub fn disconnect_reason(&self) -> u32 {
        match self {
            Error::Protocol(_) => 2,
            Error::VersionNotSupported(_) => 8,
            Error::StrictKex(_) | Error::Refused(_) | Error::NoCommonAlgorithm { .. } => 3,
            Error::Crypto(m) if m.contains("MAC") || m.contains("tag") => 5,
            Error::Crypto(_) => 3,
            Error::HostKeyRejected(_) => 9,
            Error::AuthFailed { .. } => 14,
            _ => 11,
        }
    }
}

/// Make peer-provided text safe to show: control characters escaped, length capped.
pub fn sanitize(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::new();
    for c in text.chars() {
        if out.len() >= MAX_PEER_TEXT {
            out.push_str("...");
            break;
        }
        if c.is_control() && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Protocol(m) => write!(f, "protocol error: {m}"),
            Error::VersionNotSupported(m) => write!(f, "protocol version not supported: {m}"),
            Error::StrictKex(m) => write!(f, "strict KEX violation: {m}"),
            Error::Refused(m) => write!(f, "refused: {m}"),
            Error::Disconnected { reason, description } => {
                write!(f, "server disconnected (reason {reason}): {description}")
            }
            Error::NoCommonAlgorithm { category, ours, theirs } => write!(
                f,
                "no matching {category} algorithm: we offer {ours}; server offers {theirs}"
            ),
            Error::Crypto(m) => write!(f, "crypto error: {m}"),
            Error::HostKeyRejected(m) => write!(f, "host key rejected: {m}"),
            Error::AuthFailed { tried, allowed } => write!(
                f,
                "authentication failed: tried [{}]; server allows [{}]",
                tried.join(", "),
                allowed.join(", ")
            ),
            Error::ChannelOpenFailed { reason, description } => {
                write!(f, "channel open failed (reason {reason}): {description}")
            }
            Error::ChannelRequestFailed(m) => write!(f, "channel request failed: {m}"),
            Error::Key(m) => write!(f, "key error: {m}"),
            Error::Timeout(m) => write!(f, "timeout: {m}"),
            Error::ConnectionClosed(m) => write!(f, "connection closed: {m}"),
            Error::Io { message, .. } => write!(f, "I/O error: {message}"),
            Error::BadArgument(m) => write!(f, "bad argument: {m}"),
            Error::Internal(m) => write!(f, "internal error: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io { kind: e.kind(), message: e.to_string() }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A duration in seconds with one decimal, rounded to the nearest tenth ("2.5"), for messages.
/// Integer arithmetic: `{:.1}` of an `f64` brings in core's float formatting (Grisu, Dragon and
/// their tables, about 17 KiB of the C library) for these two timeout messages alone.
pub(crate) struct Tenths(pub std::time::Duration);

impl fmt::Display for Tenths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = (self.0.as_millis() + 50) / 100;
        write!(f, "{}.{}", t / 10, t % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_escapes_and_caps() {
        assert_eq!(sanitize(b"ok\x1b[31mred\n"), "ok\\u{1b}[31mred\\n");
        let long = vec![b'a'; 10_000];
        assert!(sanitize(&long).len() <= MAX_PEER_TEXT + 3);
    }

    #[test]
    fn messages_are_specific() {
        let e = Error::AuthFailed { tried: vec!["password".into()], allowed: vec!["publickey".into()] };
        assert_eq!(e.to_string(), "authentication failed: tried [password]; server allows [publickey]");
        assert_eq!(Error::HostKeyRejected("x".into()).disconnect_reason(), 9);
    }

    #[test]
    fn tenths_round_like_the_float_format() {
        use std::time::Duration;
        for (ms, text) in [(0, "0.0"), (1000, "1.0"), (1049, "1.0"), (1051, "1.1"), (2960, "3.0"), (61_234, "61.2")] {
            assert_eq!(Tenths(Duration::from_millis(ms)).to_string(), text);
            assert_eq!(format!("{:.1}", Duration::from_millis(ms).as_secs_f64()), text);
        }
    }
}
