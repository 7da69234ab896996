//! OpenSSH's known_hosts file (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"), read, matched and
//! written as OpenSSH's `hostfile.c` and `match.c` do: lines of `[@marker] hosts keytype
//! base64 [comment]`; plain host lists with `*`/`?` wildcards and `!` negation, matched
//! case-insensitively against the whole lookup name; hashed hosts `|1|salt|hash`
//! (HMAC-SHA1 keyed by the 20-byte salt over the lookup name); `@revoked` and
//! `@cert-authority` markers; the OK / REVOKED / CHANGED / NEW outcome of
//! `check_hostkeys_by_key_or_type`; new entries as `add_host_to_hostfile` writes them; and the
//! rewrite of `hostfile_replace_entries` used by UpdateHostKeys (OpenSSH PROTOCOL section 2.5).
//!
//! Text in, text out: reading and writing files belongs to the runtime. A malformed line is
//! never fatal: it is skipped with a warning and kept verbatim by a rewrite.

use base64ct::{Base64, Encoding};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

use super::{KeyKind, PublicKey};
use crate::random::Random;
use crate::wire::Reader;

/// Prefix of a hashed host field (OpenSSH's HASH_MAGIC).
const HASH_MAGIC: &[u8] = b"|1|";
/// HMAC-SHA1 salt and output length.
const SALT_LEN: usize = 20;
/// Longest line we look at; longer ones are malformed (a 16384-bit RSA key is ~2.8 KB).
const MAX_LINE: usize = 64 * 1024;
/// OpenSSH's match_pattern_list gives up (no match) on a longer sub-pattern.
const MAX_PATTERN: usize = 1023;
/// Key type names OpenSSH can read (sshkey.c); a line naming another type is malformed.
const OPENSSH_KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-ed25519-cert-v01@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ssh-rsa",
    "ssh-rsa-cert-v01@openssh.com",
    "ssh-dss",
    "ssh-dss-cert-v01@openssh.com",
    "ssh-xmss@openssh.com",
    "ssh-xmss-cert-v01@openssh.com",
];
/// Characters that never go into a recorded host name (sshconnect.c check_host_key).
const UNRECORDABLE: &[char] = &['@', '?', '*', '#', '[', ']', '|', '\'', '"', '\\'];

/// A line's marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    None,
    Revoked,
    /// Concerns host certificates only, which this client does not accept: never matches.
    CertAuthority,
}

/// One well-formed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number.
    pub line: usize,
    pub marker: Marker,
    /// The host field as written (patterns or `|1|salt|hash`).
    pub hosts: Vec<u8>,
    pub key_type: String,
    /// The key blob. Keys of types this build cannot use are kept as blobs: they still count
    /// as "a key is known for this host".
    pub blob: Vec<u8>,
}

impl Entry {
    pub fn is_hashed(&self) -> bool {
        self.hosts.first() == Some(&b'|')
    }
    /// The key, when this build can use its type.
    pub fn key(&self) -> Option<PublicKey> {
        PublicKey::from_blob(&self.blob).ok()
    }
    /// "SHA256:..." of the key, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        format!("SHA256:{}", base64ct::Base64Unpadded::encode_string(&Sha256::digest(&self.blob)))
    }
    /// "ED25519", "ECDSA", "RSA", ... as OpenSSH names the key in messages.
    pub fn kind_name(&self) -> String {
        match KeyKind::from_key_type(&self.key_type) {
            Some(k) => k.to_string(),
            None => self.key_type.clone(),
        }
    }
}

/// A parsed file: its entries and a warning for each malformed line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub entries: Vec<Entry>,
    pub warnings: Vec<String>,
}

/// What one line is.
#[derive(Debug, PartialEq, Eq)]
enum LineKind {
    /// Blank or a comment.
    Nothing,
    Bad(&'static str),
    Entry { marker: Marker, hosts: Vec<u8>, key_type: String, blob: Vec<u8> },
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn skip_blanks(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|&&b| is_blank(b)).count();
    s.get(n..).unwrap_or(&[])
}

/// Split off the first field: (field, rest after the following blanks).
fn field(s: &[u8]) -> (&[u8], &[u8]) {
    let n = s.iter().take_while(|&&b| !is_blank(b)).count();
    let (f, rest) = s.split_at(n.min(s.len()));
    (f, skip_blanks(rest))
}

fn parse_line(raw: &[u8]) -> LineKind {
    if raw.len() > MAX_LINE {
        return LineKind::Bad("line too long");
    }
    let s = skip_blanks(raw);
    if s.is_empty() || s.first() == Some(&b'#') || s == b"\r" {
        return LineKind::Nothing;
    }
    let mut s = s;
    let mut marker = Marker::None;
    while s.first() == Some(&b'@') {
        if marker != Marker::None {
            return LineKind::Bad("more than one marker");
        }
        let (m, rest) = field(s);
        marker = match m {
            b"@cert-authority" => Marker::CertAuthority,
            b"@revoked" => Marker::Revoked,
            _ => return LineKind::Bad("invalid marker"),
        };
        s = rest;
    }
    let (hosts, rest) = field(s);
    if hosts.is_empty() || rest.is_empty() || rest.first() == Some(&b'#') {
        return LineKind::Bad("truncated line");
    }
    let (key_type, rest) = field(rest);
    let (b64, _comment) = field(rest);
    let b64 = b64.strip_suffix(b"\r").unwrap_or(b64);
    let Ok(key_type) = std::str::from_utf8(key_type) else { return LineKind::Bad("invalid key type") };
    if !OPENSSH_KEY_TYPES.contains(&key_type) {
        return LineKind::Bad("unknown key type");
    }
    let Some(blob) = std::str::from_utf8(b64).ok().and_then(|t| Base64::decode_vec(t).ok()) else {
        return LineKind::Bad("invalid base64 key");
    };
    let mut r = Reader::new(&blob);
    if r.string().ok() != Some(key_type.as_bytes()) {
        return LineKind::Bad("key blob does not match its key type");
    }
    // A key this build can use must be a valid key; others are kept as blobs.
    if let Some(kind) = KeyKind::from_key_type(key_type) {
        if kind.missing_feature().is_none() && PublicKey::from_blob(&blob).is_err() {
            return LineKind::Bad("invalid key");
        }
    }
    LineKind::Entry { marker, hosts: hosts.to_vec(), key_type: key_type.to_string(), blob }
}

/// The lines of a file: split on `\n`; a last line without one counts, an empty tail does not.
fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut parts: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    if parts.last().is_some_and(|l| l.is_empty()) {
        parts.pop();
    }
    parts.into_iter()
}

/// Parse a whole file. `name` (the path) only labels the warnings.
pub fn parse(text: &[u8], name: &str) -> Parsed {
    let mut out = Parsed::default();
    for (i, raw) in lines(text).enumerate() {
        let line = i.saturating_add(1);
        match parse_line(raw) {
            LineKind::Nothing => {}
            LineKind::Bad(why) => out.warnings.push(format!("{name}:{line}: {why}: line skipped")),
            LineKind::Entry { marker, hosts, key_type, blob } => {
                out.entries.push(Entry { line, marker, hosts, key_type, blob })
            }
        }
    }
    out
}

/// The name a host is looked up and recorded under: lowercased, `[host]:port` when the port
/// is not 22 (sshconnect.c put_host_port).
pub fn lookup_name(host: &str, port: u16) -> String {
    let h = host.to_ascii_lowercase();
    if port == 22 || port == 0 {
        h
    } else {
        format!("[{h}]:{port}")
    }
}

/// Whether a host name may be written into a file at all.
pub fn recordable(host: &str) -> bool {
    !host.is_empty() && !host.contains(UNRECORDABLE) && !host.contains(char::is_whitespace)
}

/// `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`.
pub fn hash_host(name: &str, salt: &[u8; SALT_LEN]) -> String {
    let digest = match <Hmac<Sha1> as KeyInit>::new_from_slice(salt) {
        Ok(mut m) => {
            m.update(name.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
        // HMAC takes keys of any length; this is unreachable.
        Err(_) => Vec::new(),
    };
    format!("|1|{}|{}", Base64::encode_string(salt), Base64::encode_string(&digest))
}

/// Does a hashed host field match `name`? A salt that is not 20 bytes never matches.
fn hashed_matches(field: &[u8], name: &str) -> bool {
    let Some(rest) = field.strip_prefix(HASH_MAGIC) else { return false };
    let Some(end) = rest.iter().position(|&b| b == b'|') else { return false };
    let Some(salt) = rest.get(..end).and_then(|s| std::str::from_utf8(s).ok()).and_then(|s| Base64::decode_vec(s).ok())
    else {
        return false;
    };
    let Ok(salt) = <[u8; SALT_LEN]>::try_from(salt.as_slice()) else { return false };
    hash_host(name, &salt).as_bytes() == field
}

/// `*` and `?` wildcards over bytes, the whole string (match.c match_pattern).
fn glob(s: &[u8], p: &[u8]) -> bool {
    let (mut si, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        match (p.get(pi), s.get(si)) {
            (Some(b'*'), _) => {
                star = Some((pi, si));
                pi += 1;
            }
            (Some(&pc), Some(&sc)) if pc == b'?' || pc == sc => {
                pi += 1;
                si += 1;
            }
            (None, None) => return true,
            _ => match star {
                // Let the last `*` swallow one more byte and retry.
                Some((sp, ss)) if ss < s.len() => {
                    star = Some((sp, ss + 1));
                    pi = sp + 1;
                    si = ss + 1;
                }
                _ => return false,
            },
        }
    }
}

/// match.c match_pattern_list with lowercasing: `Some(true)` for a positive match,
/// `Some(false)` when a `!pattern` matched (a veto), `None` for no match.
fn pattern_list(name: &[u8], list: &[u8]) -> Option<bool> {
    let mut positive = false;
    for sub in list.split(|&b| b == b',') {
        let (negated, pat) = match sub.strip_prefix(b"!") {
            Some(p) => (true, p),
            None => (false, sub),
        };
        if pat.len() >= MAX_PATTERN {
            return None;
        }
        if glob(name, &pat.to_ascii_lowercase()) {
            if negated {
                return Some(false);
            }
            positive = true;
        }
    }
    positive.then_some(true)
}

/// Does a host field (hashed or a pattern list) match the lookup name?
pub fn hosts_match(hosts: &[u8], name: &str) -> bool {
    if hosts.first() == Some(&b'|') {
        hashed_matches(hosts, name)
    } else {
        pattern_list(name.to_ascii_lowercase().as_bytes(), hosts) == Some(true)
    }
}

/// Where an entry was found: the index of its file in the slice given, and the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found<'a> {
    pub file: usize,
    pub entry: &'a Entry,
}

/// The outcome of a lookup (hostfile.c check_hostkeys_by_key_or_type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// An unmarked matching line holds the key.
    Ok(Found<'a>),
    /// A matching `@revoked` line holds the key (whatever else matched).
    Revoked(Found<'a>),
    /// Unmarked matching lines exist, none holds the key; the last of them.
    Changed(Found<'a>),
    New,
}

/// Matching entries of every file, in file and line order.
pub fn matching<'a>(files: &'a [&'a Parsed], name: &'a str) -> impl Iterator<Item = Found<'a>> + 'a {
    files.iter().enumerate().flat_map(move |(file, p)| {
        p.entries.iter().filter(move |e| hosts_match(&e.hosts, name)).map(move |entry| Found { file, entry })
    })
}

/// Look `blob` up for `name` in `files` (in order: user files, then system files).
pub fn check<'a>(files: &'a [&'a Parsed], name: &'a str, blob: &[u8]) -> Outcome<'a> {
    let mut out = Outcome::New;
    for f in matching(files, name).filter(|f| f.entry.marker == Marker::None) {
        if f.entry.blob == blob {
            out = Outcome::Ok(f);
            break;
        }
        out = Outcome::Changed(f);
    }
    if let Some(f) = matching(files, name).find(|f| f.entry.marker == Marker::Revoked && f.entry.blob == blob) {
        return Outcome::Revoked(f);
    }
    out
}

/// Key types of the unmarked lines for `name`, in file order, without repeats.
pub fn known_types(files: &[&Parsed], name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in matching(files, name).filter(|f| f.entry.marker == Marker::None) {
        if !out.contains(&f.entry.key_type) {
            out.push(f.entry.key_type.clone());
        }
    }
    out
}

/// A new line for `name` (lowercased) and `key`: `name type base64\n`, the name hashed with
/// a fresh salt from `rng` when `hash` is set.
pub fn format_entry(name: &str, key: &PublicKey, hash: bool, rng: &mut dyn Random) -> String {
    let name = name.to_ascii_lowercase();
    let host = if hash {
        let mut salt = [0u8; SALT_LEN];
        rng.fill(&mut salt);
        hash_host(&name, &salt)
    } else {
        name
    };
    format!("{host} {}\n", key.to_openssh_line())
}

/// `text` with `line` appended, a missing final newline added first.
pub fn append(text: &[u8], line: &str) -> Vec<u8> {
    let mut out = text.to_vec();
    if !out.is_empty() && out.last() != Some(&b'\n') {
        out.push(b'\n');
    }
    out.extend_from_slice(line.as_bytes());
    out
}

/// Whether `text` already has an unmarked line for `name` holding `key`.
pub fn holds(text: &[u8], name: &str, key: &PublicKey) -> bool {
    let p = parse(text, "");
    let files = [&p];
    matches!(check(&files, name, key.blob()), Outcome::Ok(_))
}

/// hostfile.c hostfile_replace_entries: drop the unmarked lines for `name` whose key is not
/// in `keys`, keep every other line byte for byte, then (when `add`) append the keys of
/// `keys` no line holds. `None` when nothing changes.
pub fn replace_entries(text: &[u8], name: &str, keys: &[PublicKey], add: bool, hash: bool, rng: &mut dyn Random) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len().saturating_add(1024));
    let mut seen = vec![false; keys.len()];
    let mut modified = false;
    for raw in lines(text) {
        if let LineKind::Entry { marker: Marker::None, hosts, blob, .. } = parse_line(raw) {
            if hosts_match(&hosts, name) {
                match keys.iter().position(|k| k.blob() == blob.as_slice()) {
                    Some(i) => {
                        if let Some(s) = seen.get_mut(i) {
                            *s = true;
                        }
                    }
                    None => {
                        modified = true;
                        continue;
                    }
                }
            }
        }
        out.extend_from_slice(raw);
        out.push(b'\n');
    }
    if add {
        for (k, seen) in keys.iter().zip(&seen) {
            if !seen {
                out.extend_from_slice(format_entry(name, k, hash, rng).as_bytes());
                modified = true;
            }
        }
    }
    modified.then_some(out)
}

#[cfg(test)]
#[path = "known_hosts_tests.rs"]
mod tests;
