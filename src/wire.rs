//! SSH wire encoding: RFC 4251 section 5 data types (byte, boolean, uint32, uint64, string,
//! mpint, name-list) and RFC 4253 section 6 length limits.
//!
//! `Reader` is the only code in the crate that looks at raw bytes from the network: every read
//! is bounds-checked, lengths are validated against what is left before anything is allocated,
//! and `finish()` rejects trailing bytes. `Writer` is the matching encoder.

use crate::error::Error;

/// Longest name-list we accept from a peer (dropbear and RFC 4251 section 6 suggest far less).
pub const MAX_NAME_LIST: usize = 64 * 1024;
/// Longest single algorithm name (RFC 4251 section 6: at most 64 characters).
pub const MAX_NAME: usize = 64;
/// Most names in a list.
pub const MAX_NAMES: usize = 128;

/// Checked cursor over a byte slice.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Errors when bytes remain: a known message must consume everything.
    pub fn finish(&self) -> Result<(), Error> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(Error::protocol(format!("{} trailing bytes", self.buf.len())))
        }
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.buf.len() {
            return Err(Error::protocol(format!(
                "truncated field: need {n} bytes, {} left",
                self.buf.len()
            )));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let b = self.bytes(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }

    pub fn bool(&mut self) -> Result<bool, Error> {
        Ok(self.u8()? != 0)
    }

    pub fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// An RFC 4251 `string`: uint32 length then that many bytes.
    pub fn string(&mut self) -> Result<&'a [u8], Error> {
        let len = self.u32()? as usize;
        self.bytes(len)
    }

    /// A `string` that must be UTF-8 (names, descriptions).
    pub fn utf8(&mut self) -> Result<&'a str, Error> {
        let b = self.string()?;
        std::str::from_utf8(b).map_err(|_| Error::protocol("string is not UTF-8"))
    }

    /// An `mpint`, returned as the unsigned big-endian magnitude without leading zeros.
    /// Negative values are rejected (SSH never uses them for keys or kex values).
    pub fn mpint(&mut self) -> Result<&'a [u8], Error> {
        let b = self.string()?;
        if let Some(&first) = b.first() {
            if first & 0x80 != 0 {
                return Err(Error::protocol("negative mpint"));
            }
        }
        let skip = b.iter().take_while(|&&x| x == 0).count();
        Ok(b.get(skip..).unwrap_or(&[]))
    }

    /// A `name-list`, validated (length, count, each name printable ASCII, no comma; empty
    /// entries skipped).
    pub fn name_list(&mut self) -> Result<Vec<&'a str>, Error> {
        let raw = self.string()?;
        if raw.len() > MAX_NAME_LIST {
            return Err(Error::protocol("name-list too long"));
        }
        if raw.is_empty() {
            return Ok(Vec::new());
        }
        let s = std::str::from_utf8(raw).map_err(|_| Error::protocol("name-list is not ASCII"))?;
        let mut out = Vec::new();
        for name in s.split(',') {
            // An empty entry (libssh 0.10.6 ends its cipher list with a comma) matches nothing
            // and is skipped, as OpenSSH's match_list does.
            if name.is_empty() {
                continue;
            }
            if name.len() > MAX_NAME {
                return Err(Error::protocol("bad name in name-list"));
            }
            if !name.bytes().all(|c| (0x21..0x7f).contains(&c)) {
                return Err(Error::protocol("non-printable name in name-list"));
            }
            if out.len() >= MAX_NAMES {
                return Err(Error::protocol("too many names in name-list"));
            }
            out.push(name);
        }
        Ok(out)
    }
}

/// Encoder for SSH wire types, appending to a `Vec<u8>`.
#[derive(Default, Debug, Clone)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer { buf: Vec::new() }
    }

    pub fn with_capacity(n: usize) -> Self {
        Writer { buf: Vec::with_capacity(n) }
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(u8::from(v))
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }

    /// Strings longer than 4 GiB cannot be encoded; callers never build such values.
    pub fn string(&mut self, v: &[u8]) -> &mut Self {
        let len = u32::try_from(v.len()).unwrap_or(u32::MAX);
        self.u32(len);
        self.raw(v)
    }

    pub fn str(&mut self, v: &str) -> &mut Self {
        self.string(v.as_bytes())
    }

    /// An `mpint` from an unsigned big-endian magnitude (leading zeros stripped, a zero byte
    /// prepended when the top bit is set).
    pub fn mpint(&mut self, magnitude: &[u8]) -> &mut Self {
        let skip = magnitude.iter().take_while(|&&x| x == 0).count();
        let m = magnitude.get(skip..).unwrap_or(&[]);
        let pad = m.first().is_some_and(|&b| b & 0x80 != 0);
        let len = m.len() + usize::from(pad);
        self.u32(u32::try_from(len).unwrap_or(u32::MAX));
        if pad {
            self.buf.push(0);
        }
        self.raw(m)
    }

    pub fn name_list<S: AsRef<str>>(&mut self, names: &[S]) -> &mut Self {
        let joined: Vec<&str> = names.iter().map(|s| s.as_ref()).collect();
        self.str(&joined.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_all_types() {
        let mut w = Writer::new();
        w.u8(7).bool(true).u32(0xdead_beef).u64(1 << 40).str("hello");
        w.mpint(&[0x00, 0x80, 0x01]).mpint(&[0x7f]).mpint(&[]).name_list(&["a", "bc"]);
        let v = w.into_vec();
        let mut r = Reader::new(&v);
        assert_eq!(r.u8().unwrap(), 7);
        assert!(r.bool().unwrap());
        assert_eq!(r.u32().unwrap(), 0xdead_beef);
        assert_eq!(r.u64().unwrap(), 1 << 40);
        assert_eq!(r.utf8().unwrap(), "hello");
        assert_eq!(r.mpint().unwrap(), &[0x80, 0x01]);
        assert_eq!(r.mpint().unwrap(), &[0x7f]);
        assert_eq!(r.mpint().unwrap(), &[] as &[u8]);
        assert_eq!(r.name_list().unwrap(), vec!["a", "bc"]);
        r.finish().unwrap();
    }

    #[test]
    fn mpint_encoding_matches_rfc4251_examples() {
        // RFC 4251 section 5 examples.
        let mut w = Writer::new();
        w.mpint(&[]);
        assert_eq!(w.buf, [0, 0, 0, 0]);
        let mut w = Writer::new();
        w.mpint(&[0x09, 0xa3, 0x78, 0xf9, 0xb2, 0xe3, 0x32, 0xa7]);
        assert_eq!(w.buf, [0, 0, 0, 8, 0x09, 0xa3, 0x78, 0xf9, 0xb2, 0xe3, 0x32, 0xa7]);
        let mut w = Writer::new();
        w.mpint(&[0x80]);
        assert_eq!(w.buf, [0, 0, 0, 2, 0, 0x80]);
        assert!(Reader::new(&[0, 0, 0, 1, 0xff]).mpint().is_err());
    }

    #[test]
    fn truncation_and_lying_lengths_are_errors() {
        let mut w = Writer::new();
        w.str("abcdef");
        let v = w.into_vec();
        for cut in 0..v.len() {
            assert!(Reader::new(&v[..cut]).string().is_err(), "cut at {cut}");
        }
        assert!(Reader::new(&[0xff, 0xff, 0xff, 0xff, 1]).string().is_err());
        let mut r = Reader::new(&[1, 2]);
        r.u8().unwrap();
        assert!(r.finish().is_err());
    }

    #[test]
    fn bad_name_lists_rejected() {
        for bad in ["a b", "a\0b", "é", "a,,b c"] {
            let mut w = Writer::new();
            w.str(bad);
            assert!(Reader::new(&w.buf).name_list().is_err(), "{bad:?}");
        }
        let long = "x".repeat(65);
        let mut w = Writer::new();
        w.str(&long);
        assert!(Reader::new(&w.buf).name_list().is_err());
        let many = vec!["a"; 129].join(",");
        let mut w = Writer::new();
        w.str(&many);
        assert!(Reader::new(&w.buf).name_list().is_err());
        let mut w = Writer::new();
        w.str("");
        assert!(Reader::new(&w.buf).name_list().unwrap().is_empty());
        // Empty entries are skipped (libssh 0.10.6's trailing comma).
        for (raw, want) in [("a,", vec!["a"]), (",a,,b", vec!["a", "b"]), (",,", vec![])] {
            let mut w = Writer::new();
            w.str(raw);
            assert_eq!(Reader::new(&w.buf).name_list().unwrap(), want, "{raw:?}");
        }
    }
}
