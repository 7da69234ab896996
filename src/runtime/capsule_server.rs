//! SSH Capsules, the server's policy (the "SSH Capsules" seed, sections "Allowed command list",
//! "Path Binding", "Time of First Use (TOFU) Accounts" and "Virtual hosting"; the program is
//! `examples/capsule-server.rs`). No I/O on sockets here: a capsule directory is read, a
//! client's command (RFC 4254 section 6.5, `exec`) is matched against its allow-list and turned
//! into an argv, and the per-key account directory is named and made.
//!
//! A capsule directory holds `host` (the names it serves, one per line), `commands` (the
//! allow-list, one command per line), `group` (lines `<key type> <base64> group...`, each group
//! adding the lines of `commands-<group>`), `content/` (what paths are bound to) and `bin/`
//! (first in the commands' PATH). Blank lines and lines starting with `#` are skipped.
//!
//! The client's command is split into words like a POSIX shell splits them (blanks separate,
//! single quotes keep everything, double quotes keep everything but `\"`, `\\`, `\$`, `` \` ``,
//! a backslash outside quotes keeps the next character) and no shell ever runs it. It must equal
//! a listed line word for word, where the word `<path>` in a line matches any argument made of
//! `[A-Za-z0-9._/-]`: cleaned (`.` and empty parts dropped, `..` stops at the root), bound under
//! `content/` (a leading `/` is the content root), resolved (symlinks followed) and accepted
//! only when the resolved path is still inside `content/` — a missing last part is accepted when
//! what exists of the path resolves inside and the missing part is not a dangling symlink. The
//! argument the command gets is the resolved path relative to `content/` (its working
//! directory), as `./rel` (or `.`), so it never starts with `-` and never names a physical
//! location. A line of one word is the default command (the first one in the lists), run for a
//! shell request or an empty command.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};

use crate::error::Error;
use crate::keys::PublicKey;

/// The placeholder of a path argument in an allow-list line.
pub const PATH_TOKEN: &str = "<path>";
/// Largest file of a capsule directory read (host, commands, group).
const MAX_LIST_FILE: u64 = 1024 * 1024;
/// Longest command accepted from a client.
pub const MAX_COMMAND: usize = 64 * 1024;

/// One allow-list line, split into words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line(pub Vec<String>);

/// A capsule directory, read once.
#[derive(Debug, Clone)]
pub struct CapsuleDir {
    /// The directory (resolved).
    pub root: PathBuf,
    /// The names it serves.
    pub hosts: Vec<String>,
    pub commands: Vec<Line>,
    /// `type base64` of a key -> its groups' lines.
    groups: Vec<(String, Vec<Line>)>,
    /// `content/`, resolved.
    pub content: PathBuf,
    /// `bin/` (it may be missing).
    pub bin: PathBuf,
}

/// Why a command does not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No line matches (or no default command for a shell request).
    NotFound,
}

fn read_list(path: &Path) -> Result<Vec<String>, Error> {
    let text = match fs::File::open(path) {
        Ok(f) => {
            let mut s = String::new();
            io::Read::read_to_string(&mut io::Read::take(f, MAX_LIST_FILE), &mut s)
                .map_err(|e| Error::Io { kind: e.kind(), message: format!("read {}: {e}", path.display()) })?;
            s
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::Io { kind: e.kind(), message: format!("open {}: {e}", path.display()) }),
    };
    Ok(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from).collect())
}

fn read_commands(path: &Path) -> Result<Vec<Line>, Error> {
    read_list(path)?
        .into_iter()
        .map(|l| {
            split_words(&l)
                .filter(|w| !w.is_empty())
                .map(Line)
                .ok_or_else(|| Error::bad_argument(format!("{}: cannot split {l:?} into words", path.display())))
        })
        .collect()
}

impl CapsuleDir {
    /// Read a capsule directory (`content/` must exist).
    pub fn load(dir: &Path) -> Result<CapsuleDir, Error> {
        let root = dir.canonicalize().map_err(|e| Error::Io { kind: e.kind(), message: format!("{}: {e}", dir.display()) })?;
        let content = root.join("content");
        let content = content.canonicalize().map_err(|e| Error::Io { kind: e.kind(), message: format!("{}: {e}", content.display()) })?;
        if !content.is_dir() {
            return Err(Error::bad_argument(format!("{} is not a directory", content.display())));
        }
        let hosts = read_list(&root.join("host"))?;
        let commands = read_commands(&root.join("commands"))?;
        let mut groups = Vec::new();
        for l in read_list(&root.join("group"))? {
            let mut words = l.split_whitespace();
            let (Some(kind), Some(b64)) = (words.next(), words.next()) else { continue };
            let mut lines = Vec::new();
            for g in words {
                if !g.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) || g.starts_with('.') {
                    return Err(Error::bad_argument(format!("{}: bad group name {g:?}", root.join("group").display())));
                }
                lines.extend(read_commands(&root.join(format!("commands-{g}")))?);
            }
            groups.push((format!("{kind} {b64}"), lines));
        }
        let bin = root.join("bin");
        Ok(CapsuleDir { root, hosts, commands, groups, content, bin })
    }

    /// Whether this capsule serves `host` (names compare without regard to ASCII case).
    pub fn serves(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// The lines `key` may run: the capsule's, then its groups'.
    pub fn lines_for(&self, key: Option<&PublicKey>) -> Vec<&Line> {
        let mut v: Vec<&Line> = self.commands.iter().collect();
        if let Some(k) = key {
            let id = k.to_openssh();
            for (who, lines) in &self.groups {
                if *who == id {
                    v.extend(lines.iter());
                }
            }
        }
        v
    }

    /// The argv to run for `command` (`None`: a shell request), or why not.
    pub fn resolve(&self, command: Option<&[u8]>, key: Option<&PublicKey>) -> Result<Vec<OsString>, Refusal> {
        let lines = self.lines_for(key);
        let words = match command {
            Some(c) if c.len() <= MAX_COMMAND => {
                let c = std::str::from_utf8(c).map_err(|_| Refusal::NotFound)?;
                split_words(c).ok_or(Refusal::NotFound)?
            }
            Some(_) => return Err(Refusal::NotFound),
            None => Vec::new(),
        };
        if words.is_empty() {
            let d = lines.iter().find(|l| l.0.len() == 1).ok_or(Refusal::NotFound)?;
            return Ok(d.0.iter().map(OsString::from).collect());
        }
        lines.iter().find_map(|l| self.match_line(l, &words)).ok_or(Refusal::NotFound)
    }

    fn match_line(&self, line: &Line, words: &[String]) -> Option<Vec<OsString>> {
        if line.0.len() != words.len() {
            return None;
        }
        line.0
            .iter()
            .zip(words)
            .map(|(l, w)| if l == PATH_TOKEN { bind_path(&self.content, w).ok() } else { (l == w).then(|| OsString::from(w)) })
            .collect()
    }
}

/// Which capsule serves `host` (the first one listing it), else the first (the default).
pub fn select<'a>(capsules: &'a [CapsuleDir], host: Option<&str>) -> Option<&'a CapsuleDir> {
    host.and_then(|h| capsules.iter().find(|c| c.serves(h))).or_else(|| capsules.first())
}

/// Split `s` into words as a POSIX shell would (quotes and backslashes; no expansion).
/// `None` for an unterminated quote or a trailing backslash.
pub fn split_words(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    // A word started (quotes make a word even when empty: '' is an empty argument).
    let mut started = false;
    let mut it = s.chars();
    while let Some(c) = it.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if started {
                    words.push(std::mem::take(&mut cur));
                    started = false;
                }
            }
            '\'' => {
                started = true;
                loop {
                    match it.next()? {
                        '\'' => break,
                        x => cur.push(x),
                    }
                }
            }
            '"' => {
                started = true;
                loop {
                    match it.next()? {
                        '"' => break,
                        '\\' => match it.next()? {
                            x @ ('"' | '\\' | '$' | '`') => cur.push(x),
                            '\n' => {}
                            x => {
                                cur.push('\\');
                                cur.push(x);
                            }
                        },
                        x => cur.push(x),
                    }
                }
            }
            '\\' => {
                started = true;
                match it.next()? {
                    '\n' => {}
                    x => cur.push(x),
                }
            }
            x => {
                started = true;
                cur.push(x);
            }
        }
    }
    if started {
        words.push(cur);
    }
    Some(words)
}

/// Whether `arg` may be a path argument: `[A-Za-z0-9._/-]`, not empty.
pub fn path_chars_ok(arg: &str) -> bool {
    !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-'))
}

/// The cleaned parts of a virtual path: `.` and empty parts dropped, `..` removes the part
/// before it and stops at the root.
pub fn clean(arg: &str) -> Vec<&str> {
    let mut parts: Vec<&str> = Vec::new();
    for p in arg.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts
}

/// Bind a path argument under `content` (resolved already): the argument the command gets
/// (`./rel` or `.`), or an error when it has other characters or would leave `content`.
pub fn bind_path(content: &Path, arg: &str) -> Result<OsString, Error> {
    let outside = || Error::bad_argument(format!("path {arg:?} is not inside the capsule's content"));
    if !path_chars_ok(arg) {
        return Err(Error::bad_argument(format!("path {:?} has characters outside [A-Za-z0-9._/-]", crate::error::sanitize(arg.as_bytes()))));
    }
    let parts = clean(arg);
    // The longest prefix that exists, resolved; what follows must not exist at all.
    let mut resolved = None;
    for n in (0..=parts.len()).rev() {
        let mut p = content.to_path_buf();
        p.extend(parts.iter().take(n));
        match p.canonicalize() {
            Ok(r) => {
                if let Some(next) = parts.get(n) {
                    // Missing, or a dangling symlink / unreadable: only "nothing there" will do.
                    match fs::symlink_metadata(p.join(next)) {
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        _ => return Err(outside()),
                    }
                }
                resolved = Some((r, n));
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(_) => return Err(outside()),
        }
    }
    let (r, n) = resolved.ok_or_else(outside)?;
    let mut rel = r.strip_prefix(content).map_err(|_| outside())?.to_path_buf();
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(outside());
    }
    for p in parts.iter().skip(n) {
        rel.push(p);
    }
    if rel.as_os_str().is_empty() {
        return Ok(OsString::from("."));
    }
    let mut out = OsString::from("./");
    out.push(rel.as_os_str());
    Ok(out)
}

/// The account directory name of a key: its SHA-256 fingerprint without `SHA256:`, in the
/// file-name-safe base64 alphabet (`+` -> `-`, `/` -> `_`).
pub fn account_name(key: &PublicKey) -> String {
    let fp = key.fingerprint();
    fp.strip_prefix("SHA256:").unwrap_or(&fp).replace('+', "-").replace('/', "_")
}

/// `accounts/<name>/` under the capsule directory, made (0700) on first use. Returns the path
/// and whether it was made now.
pub fn ensure_account(capsule: &CapsuleDir, key: &PublicKey) -> Result<(PathBuf, bool), Error> {
    let io_err = |p: &Path, e: io::Error| Error::Io { kind: e.kind(), message: format!("{}: {e}", p.display()) };
    let accounts = capsule.root.join("accounts");
    match fs::DirBuilder::new().mode(0o700).create(&accounts) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err(&accounts, e)),
    }
    let dir = accounts.join(account_name(key));
    match fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => Ok((dir, true)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok((dir, false)),
        Err(e) => Err(io_err(&dir, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        split_words(s).unwrap()
    }

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(w("cat /hello.gmi"), ["cat", "/hello.gmi"]);
        assert_eq!(w("  git-upload-pack '/repo.git'  "), ["git-upload-pack", "/repo.git"]);
        assert_eq!(w(r#"a "b c" d\ e 'f"g' "h\"i" "\x" ''"#), ["a", "b c", "d e", "f\"g", "h\"i", "\\x", ""]);
        assert_eq!(w("scp -f /a"), ["scp", "-f", "/a"]);
        assert_eq!(w("a;b $x `y`"), ["a;b", "$x", "`y`"]);
        assert_eq!(w(""), Vec::<String>::new());
        assert!(split_words("'open").is_none());
        assert!(split_words("\"open").is_none());
        assert!(split_words("trailing\\").is_none());
    }

    #[test]
    fn paths_clean_to_the_root() {
        assert_eq!(clean("/a/./b//c/"), ["a", "b", "c"]);
        assert_eq!(clean("../../etc/passwd"), ["etc", "passwd"]);
        assert_eq!(clean("/a/../../b"), ["b"]);
        assert!(clean("/").is_empty());
        assert!(path_chars_ok("/repo.git") && path_chars_ok("-n"));
        assert!(!path_chars_ok("") && !path_chars_ok("a b") && !path_chars_ok("a;b") && !path_chars_ok("ä"));
    }

    struct Tmp(PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
    fn tmp(what: &str) -> Tmp {
        let d = std::env::temp_dir().join(format!("sshbridge-capsule-server-{}-{what}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("content/sub")).unwrap();
        fs::create_dir_all(d.join("outside")).unwrap();
        fs::write(d.join("content/hello.gmi"), "hi").unwrap();
        fs::write(d.join("outside/secret"), "s").unwrap();
        std::os::unix::fs::symlink(d.join("outside"), d.join("content/out")).unwrap();
        std::os::unix::fs::symlink(d.join("outside/nothing"), d.join("content/dangling")).unwrap();
        std::os::unix::fs::symlink("sub", d.join("content/in")).unwrap();
        fs::write(d.join("commands"), "welcome\ncat <path>\nscp -f <path>\ngit-upload-pack <path>\n# comment\n\nls\n").unwrap();
        fs::write(d.join("commands-admin"), "rm <path>\n").unwrap();
        fs::write(d.join("host"), "example.com\nwww.example.com\n").unwrap();
        Tmp(d)
    }

    #[test]
    fn paths_bind_under_content_and_never_leave_it() {
        let t = tmp("bind");
        let content = t.0.join("content").canonicalize().unwrap();
        let b = |a: &str| bind_path(&content, a).map(|p| p.into_string().unwrap());
        assert_eq!(b("/hello.gmi").unwrap(), "./hello.gmi");
        assert_eq!(b("hello.gmi").unwrap(), "./hello.gmi");
        assert_eq!(b("/").unwrap(), ".");
        assert_eq!(b("../../etc/passwd").unwrap(), "./etc/passwd");
        assert_eq!(b("/etc/passwd").unwrap(), "./etc/passwd");
        assert_eq!(b("/sub/new").unwrap(), "./sub/new");
        assert_eq!(b("/in/x").unwrap(), "./sub/x", "a symlink inside resolves to its target");
        assert_eq!(b("-n").unwrap(), "./-n");
        assert!(b("/out/secret").is_err(), "a symlink to outside");
        assert!(b("/out").is_err());
        assert!(b("/out/missing").is_err());
        assert!(b("/dangling").is_err(), "a dangling symlink to outside");
        assert!(b("/a b").is_err());
        assert!(b("$HOME").is_err());
    }

    #[test]
    fn allow_list_matches_word_for_word() {
        let t = tmp("allow");
        let admin = crate::PrivateKey::generate(crate::KeyKind::Ed25519).unwrap().public_key();
        fs::write(t.0.join("group"), format!("{} admin\n", admin.to_openssh())).unwrap();
        let c = CapsuleDir::load(&t.0).unwrap();
        assert!(c.serves("EXAMPLE.com") && !c.serves("other"));
        let r = |cmd: Option<&str>| c.resolve(cmd.map(str::as_bytes), None).map(|v| v.into_iter().map(|s| s.into_string().unwrap()).collect::<Vec<_>>());
        assert_eq!(r(None).unwrap(), ["welcome"]);
        assert_eq!(r(Some("")).unwrap(), ["welcome"]);
        assert_eq!(r(Some("  ")).unwrap(), ["welcome"]);
        assert_eq!(r(Some("cat /hello.gmi")).unwrap(), ["cat", "./hello.gmi"]);
        assert_eq!(r(Some("git-upload-pack '/repo.git'")).unwrap(), ["git-upload-pack", "./repo.git"]);
        assert_eq!(r(Some("scp -f /hello.gmi")).unwrap(), ["scp", "-f", "./hello.gmi"]);
        assert_eq!(r(Some("ls")).unwrap(), ["ls"]);
        for bad in ["bash", "cat", "cat a b", "cat /out/secret", "scp -t /x", "cat 'a b'", "cat /hello.gmi;id", "rm /x", "cat 'x"] {
            assert_eq!(r(Some(bad)), Err(Refusal::NotFound), "{bad}");
        }
        assert_eq!(c.resolve(Some(b"cat \xff"), None), Err(Refusal::NotFound));
        assert!(c.resolve(Some(b"rm /x"), Some(&admin)).is_ok());
        let caps = vec![c.clone(), CapsuleDir { hosts: vec!["other".into()], ..c.clone() }];
        assert!(std::ptr::eq(select(&caps, Some("other")).unwrap(), &caps[1]));
        assert!(std::ptr::eq(select(&caps, Some("nobody")).unwrap(), &caps[0]));
        assert!(std::ptr::eq(select(&caps, None).unwrap(), &caps[0]));
    }

    #[test]
    fn accounts_are_made_once_per_key() {
        let t = tmp("accounts");
        let c = CapsuleDir::load(&t.0).unwrap();
        let k = crate::PrivateKey::generate(crate::KeyKind::Ed25519).unwrap().public_key();
        let name = account_name(&k);
        assert!(!name.contains('/') && !name.contains('+') && !name.starts_with("SHA256"), "{name}");
        let (d, made) = ensure_account(&c, &k).unwrap();
        assert!(made && d.is_dir() && d.ends_with(&name));
        let (d2, made) = ensure_account(&c, &k).unwrap();
        assert!(!made && d2 == d);
    }
}
