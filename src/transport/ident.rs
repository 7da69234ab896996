//! The identification exchange, RFC 4253 section 4.2: the server may send text lines before its
//! `SSH-protoversion-softwareversion` line; we accept protocol 2.0 and 1.99 only. Limits follow
//! OpenSSH (HOSTILE.md): at most 1024 pre-banner lines, 8 KiB per line, 64 KiB in all.

use crate::error::{sanitize, Error};

pub const MAX_LINES: usize = 1024;
pub const MAX_LINE: usize = 8192;
pub const MAX_TOTAL: usize = 64 * 1024;

/// Our identification string, without CR LF.
pub const CLIENT_IDENT: &str = concat!("SSH-2.0-sshbridge_", env!("CARGO_PKG_VERSION"));

/// Incremental parser for the server's identification.
#[derive(Debug, Default)]
pub struct IdentReader {
    lines: usize,
    total: usize,
    /// Pre-banner lines, kept sanitized for error messages (the first few only).
    pub preamble: Vec<String>,
}

/// Outcome of feeding bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum IdentResult {
    /// Need more bytes; everything offered was consumed.
    NeedMore,
    /// The identification line (without CR LF) and how many bytes of the input it consumed.
    Done { ident: Vec<u8>, consumed: usize },
}

impl IdentReader {
    /// Look at `input` (everything received and not yet consumed) and return how far the
    /// identification goes. Pre-banner lines are consumed as they complete, so `input` does not
    /// grow without bound: the caller drops the first `consumed` bytes on `NeedMore` too
    /// (returned in the tuple).
    pub fn feed(&mut self, input: &[u8]) -> Result<(IdentResult, usize), Error> {
        let mut pos = 0usize;
        loop {
            let rest = input.get(pos..).unwrap_or(&[]);
            let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                // A partial line may end in the CR of its CR LF: that byte is not counted.
                if rest.len() > MAX_LINE + usize::from(rest.last() == Some(&b'\r')) {
                    return Err(Error::protocol("invalid identification: line longer than 8192 bytes"));
                }
                if self.total.saturating_add(rest.len()) > MAX_TOTAL {
                    return Err(Error::protocol("no SSH identification in the first 64 KiB"));
                }
                return Ok((IdentResult::NeedMore, pos));
            };
            let raw = rest.get(..nl).unwrap_or(&[]);
            let line = raw.strip_suffix(b"\r").unwrap_or(raw);
            let consumed = nl + 1;
            self.total = self.total.saturating_add(consumed);
            if line.len() > MAX_LINE {
                return Err(Error::protocol("invalid identification: line longer than 8192 bytes"));
            }
            if self.total > MAX_TOTAL {
                return Err(Error::protocol("no SSH identification in the first 64 KiB"));
            }
            if line.starts_with(b"SSH-") {
                check_version(line)?;
                return Ok((IdentResult::Done { ident: line.to_vec(), consumed: pos + consumed }, pos + consumed));
            }
            self.lines += 1;
            if self.lines > MAX_LINES {
                return Err(Error::protocol("no SSH identification after 1024 lines"));
            }
            if self.preamble.len() < 4 {
                self.preamble.push(sanitize(line));
            }
            pos += consumed;
        }
    }
}

fn check_version(line: &[u8]) -> Result<(), Error> {
    if line.contains(&0) || line.contains(&b'\r') {
        return Err(Error::protocol("invalid identification: control characters in version line"));
    }
    let text = sanitize(line);
    let rest = line.get(4..).unwrap_or(&[]);
    let Some(dash) = rest.iter().position(|&b| b == b'-') else {
        return Err(Error::protocol(format!("invalid identification {text:?}: no software version")));
    };
    let proto = rest.get(..dash).unwrap_or(&[]);
    let software = rest.get(dash + 1..).unwrap_or(&[]);
    if software.is_empty() {
        return Err(Error::protocol(format!("invalid identification {text:?}: no software version")));
    }
    if proto != b"2.0" && proto != b"1.99" {
        return Err(Error::VersionNotSupported(format!("server identification {text:?} (need SSH-2.0)")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> Result<Vec<u8>, Error> {
        let mut r = IdentReader::default();
        match r.feed(input)? {
            (IdentResult::Done { ident, .. }, _) => Ok(ident),
            (IdentResult::NeedMore, _) => Err(Error::protocol("need more")),
        }
    }

    #[test]
    fn accepts_versions_and_preamble() {
        assert_eq!(run(b"SSH-2.0-OpenSSH_9.2\r\nrest").unwrap(), b"SSH-2.0-OpenSSH_9.2");
        assert_eq!(run(b"SSH-1.99-x\n").unwrap(), b"SSH-1.99-x");
        assert_eq!(run(b"a\r\nb\r\nc\nd\ne\nSSH-2.0-x y\r\n").unwrap(), b"SSH-2.0-x y");
    }

    #[test]
    fn rejects_bad_versions() {
        for bad in [&b"SSH-1.5-x\r\n"[..], b"SSH-2.0\r\n", b"SSH-3.0-x\r\n", b"SSH-2.0-\r\n", b"SSH-2.0-a\0b\r\n"] {
            assert!(run(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        // Lower-case "ssh-" is not an identification: it is a preamble line.
        assert!(matches!(run(b"ssh-2.0-x\r\n"), Err(Error::Protocol(m)) if m == "need more"));
    }

    #[test]
    fn limits_hold() {
        let many = b"junk\r\n".repeat(2000);
        assert!(run(&many).is_err());
        let long = vec![b'a'; MAX_LINE + 1];
        assert!(run(&long).is_err());
        let mut r = IdentReader::default();
        // Incremental: partial line needs more, consumed lines are reported.
        let (res, used) = r.feed(b"hello\r\nSSH-2.0-").unwrap();
        assert_eq!(res, IdentResult::NeedMore);
        assert_eq!(used, 7);
        let (res, _) = r.feed(b"SSH-2.0-x\r\n").unwrap();
        assert!(matches!(res, IdentResult::Done { .. }));
    }
}
