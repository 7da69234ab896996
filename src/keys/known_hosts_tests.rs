//! Unit tests of the known_hosts format: the HMAC vector of the issue, a pattern table, every
//! outcome of the lookup, malformed lines, writing and rewriting.

use super::*;
use crate::random::TestRng;

const ED_A: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIMTOZowJIAomL7mspElu/tejCPRnwvTuap1Mwvsl21u";
const ED_B: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIWkem3bycMUQkZy6o8Ucohviaqi5WDTxyS9TymMYFLp";
/// Kept as a blob in every build (the nistp384 type is never compiled in).
const P384: &str = "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBPGsSLRDMeuqWmHSATiZDW8+59CkwXOA4H1UAxlRT3UfPRjBnMN+wyZAI7P7SfIyej5U2OLtfVW+7fMlP5QUMj/fGgR3Hb68gHNOcJeaMYMd8wJjc2rQscwVogPQSRpecw==";

fn key(line: &str) -> PublicKey {
    PublicKey::from_openssh_line(line).unwrap()
}

fn outcome(text: &str, name: &str, k: &str) -> (String, Option<usize>) {
    let p = parse(text.as_bytes(), "f");
    let files = [&p];
    let k = key(k);
    match check(&files, name, k.blob()) {
        Outcome::Ok(f) => ("OK".into(), Some(f.entry.line)),
        Outcome::Revoked(f) => ("REVOKED".into(), Some(f.entry.line)),
        Outcome::Changed(f) => ("CHANGED".into(), Some(f.entry.line)),
        Outcome::New => ("NEW".into(), None),
    }
}

#[test]
fn hmac_sha1_vector_of_the_issue() {
    let salt: [u8; 20] = std::array::from_fn(|i| i as u8);
    assert_eq!(hash_host("example.com", &salt), "|1|AAECAwQFBgcICQoLDA0ODxAREhM=|nnUK16ANsXd3hL31YfAkGOluSjU=");
    assert!(hosts_match(b"|1|AAECAwQFBgcICQoLDA0ODxAREhM=|nnUK16ANsXd3hL31YfAkGOluSjU=", "example.com"));
    assert!(!hosts_match(b"|1|AAECAwQFBgcICQoLDA0ODxAREhM=|nnUK16ANsXd3hL31YfAkGOluSjU=", "example.org"));
    // A salt of 19 bytes (base64 of 00..12) never matches, even with the "right" hash for it.
    let short: Vec<u8> = (0u8..19).collect();
    let mut m = <Hmac<Sha1> as KeyInit>::new_from_slice(&short).unwrap();
    m.update(b"example.com");
    let field = format!("|1|{}|{}", Base64::encode_string(&short), Base64::encode_string(&m.finalize().into_bytes()));
    assert!(!hosts_match(field.as_bytes(), "example.com"));
    assert!(!hosts_match(b"|1|garbage", "example.com"));
    assert!(!hosts_match(b"|2|AAECAwQFBgcICQoLDA0ODxAREhM=|nnUK16ANsXd3hL31YfAkGOluSjU=", "example.com"));
}

#[test]
fn pattern_table() {
    let table: &[(&str, &str, bool)] = &[
        ("example.com", "example.com", true),
        ("Example.COM", "example.com", true),
        ("example.com", "EXAMPLE.com", true),
        ("example.com", "example.co", false),
        ("example.com", "xample.com", false),
        ("*.example.com", "www.example.com", true),
        ("*.example.com", "example.com", false),
        ("*", "anything", true),
        ("*", "", true),
        ("?", "a", true),
        ("?", "ab", false),
        ("ex?mple.com", "example.com", true),
        ("e*e*m", "example.com", true),
        ("e*e*x", "example.com", false),
        ("e*e*m*", "example.com", true),
        ("*le.c?m", "example.com", true),
        ("a,b,example.com", "example.com", true),
        ("a,b,c", "example.com", false),
        ("*.example.com,!bad.example.com", "www.example.com", true),
        ("*.example.com,!bad.example.com", "bad.example.com", false),
        ("!bad.example.com,*.example.com", "bad.example.com", false),
        ("!bad.example.com", "other.example.com", false),
        ("[127.0.0.1]:2222", "[127.0.0.1]:2222", true),
        ("[127.0.0.1]:2222", "127.0.0.1", false),
        ("127.0.0.1", "[127.0.0.1]:2222", false),
        ("[127.0.0.1]:*", "[127.0.0.1]:2222", true),
        ("[127.0.0.?]:22*", "[127.0.0.1]:2222", true),
        ("10.0.0.*,!10.0.0.5", "10.0.0.5", false),
        ("10.0.0.*,!10.0.0.5", "10.0.0.6", true),
        (",example.com", "example.com", true),
        ("", "example.com", false),
    ];
    for (pattern, name, want) in table {
        assert_eq!(hosts_match(pattern.as_bytes(), name), *want, "{pattern:?} vs {name:?}");
    }
    // A sub-pattern of 1023 bytes or more makes the whole list fail (match.c).
    let long = format!("example.com,{}", "a".repeat(1023));
    assert!(!hosts_match(long.as_bytes(), "example.com"));
}

#[test]
fn lookup_names_and_recordable_names() {
    assert_eq!(lookup_name("Example.COM", 22), "example.com");
    assert_eq!(lookup_name("Example.COM", 2222), "[example.com]:2222");
    assert_eq!(lookup_name("::1", 2222), "[::1]:2222");
    assert!(recordable("example.com"));
    assert!(recordable("::1"));
    for bad in ["a@b", "a?", "*", "a#", "[a]", "a|b", "a'", "a\"", "a\\b", "", "a b"] {
        assert!(!recordable(bad), "{bad:?}");
    }
}

#[test]
fn every_outcome_of_the_lookup() {
    let n = "[h]:2222";
    // OK: an unmarked matching line holds the key.
    assert_eq!(outcome(&format!("[h]:2222 {ED_A}\n"), n, ED_A), ("OK".into(), Some(1)));
    // NEW: nothing for this name (another name, another port).
    assert_eq!(outcome(&format!("h {ED_A}\n[h]:22 {ED_B}\n"), n, ED_A), ("NEW".into(), None));
    // CHANGED: same type, other key; and a line of another type counts too.
    assert_eq!(outcome(&format!("x {ED_A}\n[h]:2222 {ED_B}\n"), n, ED_A), ("CHANGED".into(), Some(2)));
    assert_eq!(outcome(&format!("[h]:2222 {P384}\n"), n, ED_A), ("CHANGED".into(), Some(1)));
    // OK wins over a mismatching line before it.
    assert_eq!(outcome(&format!("[h]:2222 {ED_B}\n[h]:2222 {ED_A}\n"), n, ED_A), ("OK".into(), Some(2)));
    // CHANGED names the last mismatching line, as OpenSSH does.
    assert_eq!(outcome(&format!("[h]:2222 {ED_B}\n[h]:* {P384}\n"), n, ED_A), ("CHANGED".into(), Some(2)));
    // REVOKED overrides OK, and needs no unmarked line.
    assert_eq!(outcome(&format!("[h]:2222 {ED_A}\n@revoked * {ED_A}\n"), n, ED_A), ("REVOKED".into(), Some(2)));
    assert_eq!(outcome(&format!("@revoked [h]:2222 {ED_A}\n"), n, ED_A), ("REVOKED".into(), Some(1)));
    // A revoked line for another key changes nothing.
    assert_eq!(outcome(&format!("[h]:2222 {ED_A}\n@revoked * {ED_B}\n"), n, ED_A), ("OK".into(), Some(1)));
    // A revoked line for another name changes nothing.
    assert_eq!(outcome(&format!("[h]:2222 {ED_A}\n@revoked other {ED_A}\n"), n, ED_A), ("OK".into(), Some(1)));
    // @cert-authority lines never match a plain key: neither OK nor CHANGED.
    assert_eq!(outcome(&format!("@cert-authority [h]:2222 {ED_A}\n"), n, ED_A), ("NEW".into(), None));
    assert_eq!(outcome(&format!("@cert-authority [h]:2222 {ED_B}\n"), n, ED_A), ("NEW".into(), None));
    // A negated pattern vetoes the line.
    assert_eq!(outcome(&format!("[h]:*,![h]:2222 {ED_B}\n"), n, ED_A), ("NEW".into(), None));
    // Hashed names.
    let salt = [7u8; 20];
    let hashed = hash_host(n, &salt);
    assert_eq!(outcome(&format!("{hashed} {ED_A}\n"), n, ED_A), ("OK".into(), Some(1)));
    assert_eq!(outcome(&format!("{hashed} {ED_B}\n"), n, ED_A), ("CHANGED".into(), Some(1)));
    assert_eq!(outcome(&format!("{hashed} {ED_B}\n"), "[h]:2223", ED_A), ("NEW".into(), None));
    // Several files: the index of the file is reported.
    let a = parse(format!("[h]:2222 {ED_B}\n").as_bytes(), "a");
    let b = parse(format!("# c\n[h]:2222 {ED_A}\n").as_bytes(), "b");
    let files = [&a, &b];
    let k = key(ED_A);
    assert!(matches!(check(&files, n, k.blob()), Outcome::Ok(Found { file: 1, entry }) if entry.line == 2));
    assert_eq!(known_types(&files, n), vec!["ssh-ed25519".to_string()]);
}

#[test]
fn malformed_lines_are_skipped_with_warnings_never_fatal() {
    let text = format!(
        "# comment\n\n   \t\n  {ED_A}\nhostonly\n@bogus h {ED_A}\n@revoked @revoked h {ED_A}\nh ssh-ed25519\nh ssh-ed25519 !!!notbase64\n\
         h ssh-foo AAAA\nh ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIIMTOZowJIAomL7mspElu/tejCPRnwvTuap1Mwvsl21u\n\
         h ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAAQA=\nh # {ED_A}\n\x00\u{ff}\u{fe}\n  \tgood,h {ED_A} trailing comment words\n\
         h\t{ED_B}\r\n"
    );
    let p = parse(text.as_bytes(), "kh");
    // Line 4: the "host" is "ssh-ed25519" and the key type is the base64: unknown type.
    assert_eq!(p.entries.iter().map(|e| e.line).collect::<Vec<_>>(), vec![15, 16], "{:?}", p.warnings);
    assert_eq!(p.warnings.len(), 11, "{:?}", p.warnings);
    assert!(p.warnings[0].starts_with("kh:4: "), "{:?}", p.warnings);
    assert_eq!(p.entries[0].hosts, b"good,h");
    assert_eq!(p.entries[1].blob, key(ED_B).blob());
    // Random bytes never panic.
    let mut rng = TestRng::new(3);
    for len in [0usize, 1, 10, 100, 1000, 5000] {
        let mut buf = vec![0u8; len];
        rng.fill(&mut buf);
        let _ = parse(&buf, "r");
        let mut with_prefix = format!("|1|{}|x ", "A".repeat(len % 50)).into_bytes();
        with_prefix.extend_from_slice(&buf);
        let _ = parse(&with_prefix, "r");
    }
}

#[test]
fn writing_appending_and_rewriting() {
    let mut rng = TestRng::new(1);
    let a = key(ED_A);
    let b = key(ED_B);
    let plain = format_entry("[Host]:2222", &a, false, &mut rng);
    assert_eq!(plain, format!("[host]:2222 {ED_A}\n"));
    let hashed = format_entry("[Host]:2222", &a, true, &mut rng);
    assert!(hashed.starts_with("|1|"), "{hashed}");
    let p = parse(hashed.as_bytes(), "");
    assert!(hosts_match(&p.entries[0].hosts, "[host]:2222"));
    // A fresh salt each time.
    assert_ne!(hashed, format_entry("[host]:2222", &a, true, &mut rng));
    // A missing final newline is added before appending.
    assert_eq!(append(b"x y", "z\n"), b"x y\nz\n");
    assert_eq!(append(b"", "z\n"), b"z\n");
    assert!(holds(plain.as_bytes(), "[host]:2222", &a));
    assert!(!holds(plain.as_bytes(), "[host]:2222", &b));

    // Rewrite: the line of the dropped key goes, the others stay byte for byte, the new key is
    // appended; a garbage line and a matching @revoked line are kept.
    let text = format!("# keep\r\nother {ED_B}\ngarbage line\n[host]:2222 {ED_B} old\n@revoked [host]:2222 {ED_B}\n[host]:2222 {P384}\n*.x {ED_A}");
    let out = replace_entries(text.as_bytes(), "[host]:2222", std::slice::from_ref(&a), true, false, &mut rng).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("# keep\r\nother {ED_B}\ngarbage line\n@revoked [host]:2222 {ED_B}\n*.x {ED_A}\n[host]:2222 {ED_A}\n")
    );
    // Nothing to change: None.
    let done = format!("[host]:2222 {ED_A}\n");
    assert_eq!(replace_entries(done.as_bytes(), "[host]:2222", &[a.clone()], true, false, &mut rng), None);
    // Without `add` only removal happens.
    let out = replace_entries(done.as_bytes(), "[host]:2222", &[b.clone()], false, false, &mut rng).unwrap();
    assert!(out.is_empty());
}
