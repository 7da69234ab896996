//! Session channel requests, RFC 4254 section 6, both ways: the client encodes them (pty-req
//! 6.2, env 6.4, exec / shell / subsystem 6.5, window-change 6.7, signal 6.9) and the server
//! parses them strictly (every field, no trailing bytes).

use crate::error::{sanitize, Error};
use crate::wire::{Reader, Writer};

/// A session channel request (RFC 4254 section 6): sent by a client, parsed by a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// The command as bytes (section 6.5: no character set is implied).
    Exec(Vec<u8>),
    Shell,
    Subsystem(String),
    Env { name: String, value: String },
    /// Terminal type, size in characters and pixels, encoded terminal modes (section 8).
    Pty { term: String, cols: u32, rows: u32, width_px: u32, height_px: u32, modes: Vec<u8> },
    WindowChange { cols: u32, rows: u32, width_px: u32, height_px: u32 },
    /// Signal name without "SIG" (section 6.9).
    Signal(String),
}

impl Request {
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Exec(_) => "exec",
            Request::Shell => "shell",
            Request::Subsystem(_) => "subsystem",
            Request::Env { .. } => "env",
            Request::Pty { .. } => "pty-req",
            Request::WindowChange { .. } => "window-change",
            Request::Signal(_) => "signal",
        }
    }
    /// window-change and signal are sent without want_reply (sections 6.7, 6.9).
    pub fn want_reply(&self) -> bool {
        !matches!(self, Request::WindowChange { .. } | Request::Signal(_))
    }
    /// exec, shell and subsystem start the channel's program.
    pub fn starts(&self) -> bool {
        matches!(self, Request::Exec(_) | Request::Shell | Request::Subsystem(_))
    }
    pub(crate) fn data(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Request::Exec(c) => {
                w.string(c);
            }
            Request::Shell => {}
            Request::Subsystem(n) | Request::Signal(n) => {
                w.str(n);
            }
            Request::Env { name, value } => {
                w.str(name).str(value);
            }
            Request::Pty { term, cols, rows, width_px, height_px, modes } => {
                w.str(term).u32(*cols).u32(*rows).u32(*width_px).u32(*height_px).string(modes);
            }
            Request::WindowChange { cols, rows, width_px, height_px } => {
                w.u32(*cols).u32(*rows).u32(*width_px).u32(*height_px);
            }
        }
        w.into_vec()
    }
    pub(crate) fn refused(&self) -> Error {
        Error::ChannelRequestFailed(match self {
            Request::Exec(c) => format!("server refused to run command {:?}", sanitize(c)),
            Request::Shell => "server refused to start a shell".to_string(),
            Request::Subsystem(n) => format!("server refused subsystem {:?}", sanitize(n.as_bytes())),
            Request::Env { name, .. } => format!("server refused environment variable {:?}", sanitize(name.as_bytes())),
            Request::Pty { .. } => "server refused to allocate a pseudo-terminal".to_string(),
            other => format!("server refused {}", other.kind()),
        })
    }
}


impl Request {
    /// Parse a request the peer sent. `Ok(None)` for kinds that are not session requests
    /// (answered with a failure); malformed fields or trailing bytes are a protocol error.
    pub fn parse(kind: &str, data: &[u8]) -> Result<Option<Request>, Error> {
        let mut r = Reader::new(data);
        let req = match kind {
            "exec" => Request::Exec(r.string()?.to_vec()),
            "shell" => Request::Shell,
            "subsystem" => Request::Subsystem(r.utf8()?.to_string()),
            "env" => Request::Env { name: r.utf8()?.to_string(), value: r.utf8()?.to_string() },
            "pty-req" => Request::Pty {
                term: r.utf8()?.to_string(),
                cols: r.u32()?,
                rows: r.u32()?,
                width_px: r.u32()?,
                height_px: r.u32()?,
                modes: r.string()?.to_vec(),
            },
            "window-change" => Request::WindowChange { cols: r.u32()?, rows: r.u32()?, width_px: r.u32()?, height_px: r.u32()? },
            "signal" => Request::Signal(r.utf8()?.to_string()),
            _ => return Ok(None),
        };
        r.finish().map_err(|_| Error::protocol(format!("trailing bytes in a {kind} request")))?;
        Ok(Some(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_parses_back_to_itself() {
        for req in [
            Request::Exec(b"ls -l \xff".to_vec()),
            Request::Shell,
            Request::Subsystem("sftp".into()),
            Request::Env { name: "LANG".into(), value: "C.UTF-8".into() },
            Request::Pty { term: "xterm".into(), cols: 80, rows: 24, width_px: 640, height_px: 480, modes: vec![1, 0, 0, 0, 3, 0] },
            Request::WindowChange { cols: 120, rows: 40, width_px: 0, height_px: 0 },
            Request::Signal("TERM".into()),
        ] {
            assert_eq!(Request::parse(req.kind(), &req.data()).unwrap(), Some(req.clone()), "{req:?}");
            let mut long = req.data();
            long.push(0);
            assert!(Request::parse(req.kind(), &long).is_err(), "trailing byte accepted for {req:?}");
            if !long.is_empty() && req != Request::Shell {
                assert!(Request::parse(req.kind(), &long[..long.len() - 2]).is_err(), "truncated {req:?} accepted");
            }
        }
        assert_eq!(Request::parse("x11-req", b"whatever").unwrap(), None);
    }
}
