//! Behaviour of the packet layer for every cipher x MAC combination: round trips, incremental
//! input, corruption, replay and reordering, hostile lengths and paddings (HOSTILE.md rows 7-10,
//! 20, 21).

use super::test_backends::backend;
use super::*;
use crate::random::TestRng;

/// Every combination: `None` is the plaintext mode.
pub(super) fn all_modes() -> Vec<Option<DirectionKeys>> {
    let mut v = vec![None];
    for &c in Cipher::ALL {
        if c.is_aead() {
            v.push(Some(keys_for(c, None)));
        } else {
            for &m in Mac::ALL {
                v.push(Some(keys_for(c, Some(m))));
            }
        }
    }
    v
}

fn encrypted_modes() -> Vec<DirectionKeys> {
    all_modes().into_iter().flatten().collect()
}

pub(super) fn keys_for(cipher: Cipher, mac: Option<Mac>) -> DirectionKeys {
    let fill = |n: usize, salt: u8| (0..n).map(|i| (i as u8).wrapping_mul(29).wrapping_add(salt)).collect();
    DirectionKeys {
        cipher,
        mac,
        key: fill(cipher.key_len(), 1),
        iv: fill(cipher.iv_len(), 2),
        mac_key: fill(mac.map_or(0, |m| m.key_len()), 3),
    }
}

fn label(k: &Option<DirectionKeys>) -> String {
    match k {
        None => "none".into(),
        Some(k) => format!("{}+{}", k.cipher, k.mac.map_or("-", |m| m.name())),
    }
}

fn pair(k: &Option<DirectionKeys>) -> (Sealer, Opener) {
    match k {
        None => (Sealer::plaintext(), Opener::plaintext()),
        Some(k) => (Sealer::with_backend(k, backend()).unwrap(), Opener::with_backend(k, backend()).unwrap()),
    }
}

fn opener(k: &Option<DirectionKeys>) -> Opener {
    pair(k).1
}

fn payload(n: usize, salt: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8) ^ salt.wrapping_add((i >> 8) as u8)).collect()
}

const SIZES: &[usize] = &[0, 1, 15, 16, 17, 1000, 32768, 35000];

fn is_framing_or_integrity(e: &Error) -> bool {
    matches!(e, Error::Crypto(_) | Error::Protocol(_))
}

/// The packet must not be accepted: an error now, or, if a corrupted length asks for more, an
/// error once that much (garbage) has arrived.
fn assert_rejected(o: &mut Opener, seq: u32, mut buf: Vec<u8>, what: &str) {
    match o.open(seq, &mut buf) {
        Err(e) => assert!(is_framing_or_integrity(&e), "{what}: unexpected error {e:?}"),
        Ok(Opened::Packet { .. }) => panic!("{what}: corrupted packet accepted"),
        Ok(Opened::NeedMore(n)) => {
            assert!(n > buf.len(), "{what}: NeedMore({n}) with {} bytes", buf.len());
            assert!(n <= MAX_PACKET_LEN + 4 + 64, "{what}: NeedMore({n}) beyond the cap");
            buf.resize(n, 0);
            match o.open(seq, &mut buf) {
                Err(e) => assert!(is_framing_or_integrity(&e), "{what}: unexpected error {e:?}"),
                Ok(r) => panic!("{what}: after padding to the claimed length: {r:?}"),
            }
        }
    }
}

/// Check the structure every sealed packet must have, from the outside.
fn check_shape(s: &Sealer, k: &Option<DirectionKeys>, pkt: &[u8], payload_len: usize) {
    let tag = s.mode.tag_len();
    let bs = s.mode.block_size();
    let body = pkt.len() - tag;
    assert!(body >= 16, "{}: packet of {body} bytes", label(k));
    let aligned = if s.mode.length_excluded() { body - 4 } else { body };
    assert_eq!(aligned % bs, 0, "{}: misaligned packet", label(k));
    let pad = body - 5 - payload_len;
    assert!(pad >= MIN_PADDING, "{}: padding {pad}", label(k));
    assert!(pkt.len() - payload_len <= s.max_overhead(), "{}: overhead", label(k));
}

both_backends!(round_trip_every_mode_and_size);
fn round_trip_every_mode_and_size() {
    for k in all_modes() {
        for &seq0 in &[0u32, u32::MAX - 3] {
            let (mut s, mut o) = pair(&k);
            let mut rng = TestRng::new(1);
            let mut wire = Vec::new();
            let mut lens = Vec::new();
            for (i, &n) in SIZES.iter().enumerate() {
                let before = wire.len();
                s.seal(seq0.wrapping_add(i as u32), &payload(n, i as u8), &mut rng, &mut wire);
                check_shape(&s, &k, &wire[before..], n);
                lens.push(wire.len() - before);
            }
            let mut off = 0;
            for (i, &n) in SIZES.iter().enumerate() {
                match o.open(seq0.wrapping_add(i as u32), &mut wire[off..]) {
                    Ok(Opened::Packet { consumed, payload: p }) => {
                        assert_eq!(consumed, lens[i], "{}: consumed", label(&k));
                        assert_eq!(&wire[off..][p], &payload(n, i as u8)[..], "{}: payload {n}", label(&k));
                    }
                    r => panic!("{} size {n}: {r:?}", label(&k)),
                }
                off += lens[i];
            }
            assert_eq!(off, wire.len());
        }
    }
}

both_backends!(growing_prefix_needs_more_then_succeeds);
fn growing_prefix_needs_more_then_succeeds() {
    for k in all_modes() {
        for &n in &[0usize, 17, 1000, 35000] {
            let (mut s, mut o) = pair(&k);
            let mut rng = TestRng::new(2);
            let mut wire = Vec::new();
            let mut ends = Vec::new();
            for i in 0..2u32 {
                s.seal(40 + i, &payload(n, i as u8), &mut rng, &mut wire);
                ends.push(wire.len());
            }
            // `buf` is what the caller holds: bytes arrive one at a time and stay as the
            // opener left them.
            let mut buf: Vec<u8> = Vec::new();
            let mut start = 0;
            for (i, &end) in ends.iter().enumerate() {
                let total = end - start;
                loop {
                    let have = buf.len() - start;
                    match o.open(40 + i as u32, &mut buf[start..]) {
                        Ok(Opened::NeedMore(need)) => {
                            assert!(need > have && need <= total, "{}: NeedMore({need}) at {have}/{total}", label(&k));
                            if have >= 16 {
                                assert_eq!(need, total, "{}: length known by now", label(&k));
                            }
                            buf.push(wire[buf.len()]);
                        }
                        Ok(Opened::Packet { consumed, payload: p }) => {
                            assert_eq!((have, consumed), (total, total), "{}", label(&k));
                            assert_eq!(&buf[start..][p], &payload(n, i as u8)[..], "{}", label(&k));
                            break;
                        }
                        Err(e) => panic!("{} at {have}/{total}: {e}", label(&k)),
                    }
                }
                start = end;
            }
        }
    }
}

both_backends!(every_single_bit_flip_is_rejected);
fn every_single_bit_flip_is_rejected() {
    for k in encrypted_modes() {
        let k = Some(k);
        for &n in &[0usize, 100, 35000] {
            let mut wire = Vec::new();
            pair(&k).0.seal(7, &payload(n, 9), &mut TestRng::new(3), &mut wire);
            // Sanity: unmodified, it opens.
            let mut copy = wire.clone();
            assert!(matches!(opener(&k).open(7, &mut copy), Ok(Opened::Packet { .. })));
            let positions: Vec<usize> = if wire.len() <= 2000 {
                (0..wire.len()).collect()
            } else {
                let l = wire.len();
                (0..64).chain((64..l - 64).step_by(61)).chain(l - 64..l).collect()
            };
            for pos in positions {
                let mut bad = wire.clone();
                bad[pos] ^= 1 << (pos % 8);
                let what = format!("{} size {n} flip at {pos}", label(&k));
                assert_rejected(&mut opener(&k), 7, bad, &what);
            }
        }
    }
}

both_backends!(truncated_or_missing_tag_is_never_a_packet);
fn truncated_or_missing_tag_is_never_a_packet() {
    for k in encrypted_modes() {
        let k = Some(k);
        let mut wire = Vec::new();
        pair(&k).0.seal(1, b"hello", &mut TestRng::new(4), &mut wire);
        let tag = pair(&k).0.mode.tag_len();
        for cut in 1..=tag {
            let mut short = wire[..wire.len() - cut].to_vec();
            assert_eq!(opener(&k).open(1, &mut short).unwrap(), Opened::NeedMore(wire.len()), "{}", label(&k));
        }
        // A zeroed tag of the right length.
        let mut zeroed = wire.clone();
        let l = zeroed.len();
        zeroed[l - tag..].fill(0);
        assert!(matches!(opener(&k).open(1, &mut zeroed), Err(Error::Crypto(_))), "{}", label(&k));
    }
}

both_backends!(wrong_sequence_number_is_rejected);
fn wrong_sequence_number_is_rejected() {
    for k in encrypted_modes() {
        if matches!(k.cipher, Cipher::Aes128Gcm | Cipher::Aes256Gcm) {
            continue; // no seq input: see gcm_enforces_order_by_invocation_counter
        }
        let k = Some(k);
        for &(sealed, opened) in &[(100u32, 101u32), (5, 4), (0, 1 << 31), (u32::MAX, 0)] {
            let mut wire = Vec::new();
            pair(&k).0.seal(sealed, &payload(50, 1), &mut TestRng::new(5), &mut wire);
            assert_rejected(&mut opener(&k), opened, wire, &format!("{} seq {sealed}->{opened}", label(&k)));
        }
    }
}

both_backends!(gcm_enforces_order_by_invocation_counter);
fn gcm_enforces_order_by_invocation_counter() {
    for c in [Cipher::Aes128Gcm, Cipher::Aes256Gcm] {
        let k = Some(keys_for(c, None));
        let mut s = pair(&k).0;
        let (mut p1, mut p2) = (Vec::new(), Vec::new());
        s.seal(0, b"first", &mut TestRng::new(6), &mut p1);
        s.seal(1, b"second", &mut TestRng::new(6), &mut p2);
        // Skipping a packet.
        assert_rejected(&mut opener(&k), 1, p2.clone(), "gcm skip");
        // Replaying one.
        let mut o = opener(&k);
        assert!(matches!(o.open(0, &mut p1.clone()), Ok(Opened::Packet { .. })));
        assert_rejected(&mut o, 1, p1.clone(), "gcm replay");
        // In order it works, whatever seq says (RFC 5647 does not use it).
        let mut o = opener(&k);
        assert!(matches!(o.open(9, &mut p1.clone()), Ok(Opened::Packet { .. })));
        assert!(matches!(o.open(9, &mut p2.clone()), Ok(Opened::Packet { .. })));
    }
}

both_backends!(dropped_packet_is_detected);
fn dropped_packet_is_detected() {
    // The peer sent packets 0 and 1; packet 0 never arrived, so the receiver, expecting seq 0,
    // sees packet 1: the seq number, the GCM counter or the CTR stream position is wrong.
    for k in encrypted_modes() {
        let k = Some(k);
        let mut s = pair(&k).0;
        let (mut p1, mut p2) = (Vec::new(), Vec::new());
        s.seal(0, &payload(40, 1), &mut TestRng::new(7), &mut p1);
        s.seal(1, &payload(40, 2), &mut TestRng::new(7), &mut p2);
        assert_rejected(&mut opener(&k), 0, p2, &format!("{} dropped packet", label(&k)));
    }
}

/// A raw plaintext packet: the given length field and padding length, then `body_len` more bytes.
fn raw_packet(len_field: u32, padding: u8, body_len: usize) -> Vec<u8> {
    let mut v = len_field.to_be_bytes().to_vec();
    v.push(padding);
    v.extend((0..body_len).map(|i| i as u8));
    v
}

const BAD_LENGTHS: &[u32] = &[0, 1, 4, 5, 11, 0x7fff_ffff, 0xffff_ffff, 262_145, 262_160, 1 << 20];

both_backends!(plaintext_rejects_bad_lengths_at_once);
fn plaintext_rejects_bad_lengths_at_once() {
    // 13, 14, 27: (4 + len) % 8 != 0.
    for &l in BAD_LENGTHS.iter().chain(&[13, 14, 27, 262_141]) {
        let mut header = l.to_be_bytes().to_vec();
        let r = Opener::plaintext().open(0, &mut header);
        assert!(matches!(r, Err(Error::Protocol(_))), "length {l}: {r:?}");
        let mut full = raw_packet(l, 4, 40);
        let r = Opener::plaintext().open(0, &mut full);
        assert!(matches!(r, Err(Error::Protocol(_))), "length {l}: {r:?}");
    }
    // Boundaries that must pass: the minimum, 35000-ish and the cap (aligned to 8 with the
    // length field).
    for &l in &[12u32, 35_004, 262_140] {
        let mut header = l.to_be_bytes().to_vec();
        assert_eq!(Opener::plaintext().open(0, &mut header).unwrap(), Opened::NeedMore(l as usize + 4));
    }
}

both_backends!(plaintext_rejects_bad_padding);
fn plaintext_rejects_bad_padding() {
    for &(len, pad) in &[(12u32, 0u8), (12, 3), (12, 12), (12, 13), (12, 255), (20, 20), (20, 21), (20, 255)] {
        // Early, from the padding byte alone...
        let mut head = raw_packet(len, pad, 0);
        let r = Opener::plaintext().open(0, &mut head);
        assert!(matches!(r, Err(Error::Protocol(_))), "len {len} pad {pad}: {r:?}");
        // ...and with the whole packet there.
        let mut full = raw_packet(len, pad, len as usize - 1);
        let r = Opener::plaintext().open(0, &mut full);
        assert!(matches!(r, Err(Error::Protocol(_))), "len {len} pad {pad}: {r:?}");
    }
    // Padding filling the packet: an empty payload, for the message layer to refuse.
    let mut full = raw_packet(12, 11, 11);
    assert_eq!(Opener::plaintext().open(0, &mut full).unwrap(), Opened::Packet { consumed: 16, payload: 5..5 });
    let mut full = raw_packet(12, 4, 11);
    assert_eq!(Opener::plaintext().open(0, &mut full).unwrap(), Opened::Packet { consumed: 16, payload: 5..12 });
}

/// Misaligned lengths for a mode, and lengths at its lower bound that must fail.
fn misaligned_for(o: &Opener) -> Vec<u32> {
    if o.mode.length_excluded() {
        let bs = o.mode.block_size() as u32;
        vec![bs + 4, 2 * bs + 1, 35_001, 262_143]
    } else {
        vec![20, 29, 35_000, 262_143]
    }
}

both_backends!(encrypted_modes_reject_bad_lengths);
fn encrypted_modes_reject_bad_lengths() {
    for k in encrypted_modes() {
        let k = Some(k);
        let o = opener(&k);
        let header = if o.mode.length_excluded() { 4 } else { 16 };
        for l in BAD_LENGTHS.iter().copied().chain(misaligned_for(&o)) {
            let mut wire = Vec::new();
            pair(&k).0.seal_raw(3, &raw_packet(l, 4, 43), &mut wire);
            let mut just_header = wire[..header].to_vec();
            let r = opener(&k).open(3, &mut just_header);
            assert!(matches!(r, Err(Error::Protocol(_))), "{} length {l}: {r:?}", label(&k));
            let r = opener(&k).open(3, &mut wire);
            assert!(matches!(r, Err(Error::Protocol(_))), "{} length {l}: {r:?}", label(&k));
        }
        // The cap itself passes.
        let cap = if o.mode.length_excluded() { 262_144 } else { 262_140 };
        let mut wire = Vec::new();
        pair(&k).0.seal_raw(3, &raw_packet(cap, 4, 43), &mut wire);
        let want = cap as usize + 4 + o.mode.tag_len();
        assert_eq!(opener(&k).open(3, &mut wire).unwrap(), Opened::NeedMore(want), "{}", label(&k));
    }
}

both_backends!(encrypted_modes_reject_bad_padding_after_integrity_check);
fn encrypted_modes_reject_bad_padding_after_integrity_check() {
    for k in encrypted_modes() {
        let k = Some(k);
        let excluded = opener(&k).mode.length_excluded();
        let len: u32 = if excluded { 32 } else { 28 };
        for &pad in &[0u8, 3, len as u8, len as u8 + 1, 255] {
            let mut wire = Vec::new();
            pair(&k).0.seal_raw(3, &raw_packet(len, pad, len as usize - 1), &mut wire);
            let r = opener(&k).open(3, &mut wire);
            assert!(matches!(r, Err(Error::Protocol(_))), "{} pad {pad}: {r:?}", label(&k));
        }
        // 255 in the smallest packet the mode allows.
        let min: u32 = if excluded { opener(&k).mode.block_size() as u32 } else { 12 };
        let mut wire = Vec::new();
        pair(&k).0.seal_raw(3, &raw_packet(min, 255, min as usize - 1), &mut wire);
        let r = opener(&k).open(3, &mut wire);
        assert!(matches!(r, Err(Error::Protocol(_))), "{} short pad 255: {r:?}", label(&k));
        // Padding that fills the packet leaves an empty payload.
        let mut wire = Vec::new();
        pair(&k).0.seal_raw(3, &raw_packet(len, len as u8 - 1, len as usize - 1), &mut wire);
        match opener(&k).open(3, &mut wire).unwrap() {
            Opened::Packet { payload, .. } => assert!(payload.is_empty()),
            r => panic!("{}: {r:?}", label(&k)),
        }
    }
}

both_backends!(chacha_accepts_openssh_short_packets);
fn chacha_accepts_openssh_short_packets() {
    // OpenSSH pads a 1-byte payload under chacha20-poly1305 to packet_length 8.
    let k = Some(keys_for(Cipher::Chacha20Poly1305, None));
    let mut wire = Vec::new();
    let mut raw = raw_packet(8, 6, 0);
    raw.extend_from_slice(&[21, 0, 0, 0, 0, 0, 0]);
    pair(&k).0.seal_raw(9, &raw, &mut wire);
    assert_eq!(wire.len(), 12 + 16);
    let r = opener(&k).open(9, &mut wire).unwrap();
    assert_eq!(r, Opened::Packet { consumed: 28, payload: 5..6 });
    assert_eq!(wire[5], 21);
    // We ourselves keep to RFC 4253's 16-byte minimum.
    let mut out = Vec::new();
    pair(&k).0.seal(9, &[21], &mut TestRng::new(1), &mut out);
    assert_eq!(out.len(), 4 + 16 + 16);
}

both_backends!(largest_packets);
fn largest_packets() {
    for k in all_modes() {
        let (mut s, mut o) = pair(&k);
        let mut rng = TestRng::new(8);
        // Largest payload whose packet still fits the cap.
        let fits =
            (0..64).map(|d| MAX_PACKET_LEN - d).find(|&p| 1 + p + s.mode.padding_for(p) <= MAX_PACKET_LEN).unwrap();
        let mut wire = Vec::new();
        s.seal(1, &payload(fits, 1), &mut rng, &mut wire);
        assert!(matches!(o.open(1, &mut wire), Ok(Opened::Packet { .. })), "{}", label(&k));
        let mut wire = Vec::new();
        s.seal(2, &payload(fits + 1, 2), &mut rng, &mut wire);
        assert!(matches!(o.open(2, &mut wire), Err(Error::Protocol(_))), "{}", label(&k));
    }
}

both_backends!(max_overhead_is_tight_upper_bound);
fn max_overhead_is_tight_upper_bound() {
    for k in all_modes() {
        let mut s = pair(&k).0;
        let mut worst = 0;
        for n in (0..300).chain([32768, 35000]) {
            let mut out = Vec::new();
            s.seal(0, &payload(n, 0), &mut TestRng::new(9), &mut out);
            worst = worst.max(out.len() - n);
        }
        assert_eq!(worst, s.max_overhead(), "{}", label(&k));
    }
}

both_backends!(padding_is_random_and_minimal);
fn padding_is_random_and_minimal() {
    let mut s = Sealer::plaintext();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    s.seal(0, b"abc", &mut TestRng::new(10), &mut a);
    s.seal(0, b"abc", &mut TestRng::new(11), &mut b);
    assert_eq!(a.len(), b.len());
    assert_ne!(a[8..], b[8..], "padding should come from the RNG");
    assert_eq!(a[..8], b[..8]);
    // OpenSSH's rule for aligned payloads: 4..=bs+3 bytes of padding.
    for n in 20..200 {
        assert!((4..=11).contains(&Mode::Plain.padding_for(n)));
    }
}

both_backends!(bad_keys_are_internal_errors);
fn bad_keys_are_internal_errors() {
    let good = keys_for(Cipher::Aes128Ctr, Some(Mac::HmacSha256));
    let mut cases = Vec::new();
    let mut k = good.clone();
    k.key.pop();
    cases.push(k);
    let mut k = good.clone();
    k.iv.push(0);
    cases.push(k);
    let mut k = good.clone();
    k.mac = None;
    cases.push(k);
    let mut k = good.clone();
    k.mac_key.truncate(20);
    cases.push(k);
    let mut k = keys_for(Cipher::Chacha20Poly1305, None);
    k.key.truncate(32);
    cases.push(k);
    let mut k = keys_for(Cipher::Aes256Gcm, None);
    k.iv.clear();
    cases.push(k);
    for k in &cases {
        assert!(matches!(Sealer::with_backend(k, backend()), Err(Error::Internal(_))), "{k:?}");
        assert!(matches!(Opener::with_backend(k, backend()), Err(Error::Internal(_))), "{k:?}");
    }
    // AEAD ciphers ignore whatever MAC is named.
    let mut k = keys_for(Cipher::Aes128Gcm, Some(Mac::HmacSha512));
    k.mac_key.clear();
    assert!(Sealer::with_backend(&k, backend()).is_ok());
}

both_backends!(opener_refuses_input_after_an_error);
fn opener_refuses_input_after_an_error() {
    let k = Some(keys_for(Cipher::Aes256Ctr, Some(Mac::HmacSha256Etm)));
    let (mut s, mut o) = pair(&k);
    let mut wire = Vec::new();
    s.seal(0, b"x", &mut TestRng::new(12), &mut wire);
    let mut bad = wire.clone();
    bad[6] ^= 1;
    assert!(matches!(o.open(0, &mut bad), Err(Error::Crypto(_))));
    assert!(matches!(o.open(0, &mut wire), Err(Error::Internal(_))));
}

both_backends!(keys_are_wiped_and_not_printed);
fn keys_are_wiped_and_not_printed() {
    let mut k = keys_for(Cipher::Aes128Ctr, Some(Mac::HmacSha256));
    let shown = format!("{k:?}");
    assert!(shown.contains("Aes128Ctr") && !shown.contains("key:"), "{shown}");
    k.zeroize();
    assert!(k.key.is_empty() && k.iv.is_empty() && k.mac_key.is_empty());
    let s = Sealer::with_backend(&keys_for(Cipher::Chacha20Poly1305, None), backend()).unwrap();
    assert_eq!(format!("{s:?}"), "Sealer { cipher: \"chacha20-poly1305@openssh.com\", mac: None }");
}

/// Packets sealed by one backend open on every other, and for the same keys, sequence numbers
/// and padding the wire bytes are identical: the backends compute the same constructions.
#[test]
fn backends_interoperate_and_agree_byte_for_byte() {
    let aead: Vec<DirectionKeys> = encrypted_modes().into_iter().filter(|k| k.cipher.is_aead()).collect();
    assert_eq!(aead.len(), 3, "chacha20-poly1305, aes128-gcm, aes256-gcm");
    // Through the 32-bit sequence number wrap.
    let seq = |i: usize| (u32::MAX - 2).wrapping_add(i as u32);
    for k in &aead {
        let mut wires = Vec::new();
        for &b in Backend::ALL {
            let mut s = Sealer::with_backend(k, b).unwrap();
            let mut wire = Vec::new();
            for (i, &n) in SIZES.iter().enumerate() {
                s.seal(seq(i), &payload(n, i as u8), &mut TestRng::new(13), &mut wire);
            }
            wires.push((b, wire));
        }
        for (sealed_by, wire) in &wires {
            assert_eq!(wire, &wires[0].1, "{}: {sealed_by:?} differs from RustCrypto", k.cipher);
            for &b in Backend::ALL {
                let mut o = Opener::with_backend(k, b).unwrap();
                let mut buf = wire.clone();
                let mut off = 0;
                for (i, &n) in SIZES.iter().enumerate() {
                    let what = format!("{}: sealed by {sealed_by:?}, opened by {b:?}, size {n}", k.cipher);
                    match o.open(seq(i), &mut buf[off..]) {
                        Ok(Opened::Packet { consumed, payload: p }) => {
                            assert_eq!(&buf[off..][p], &payload(n, i as u8)[..], "{what}");
                            off += consumed;
                        }
                        r => panic!("{what}: {r:?}"),
                    }
                }
                assert_eq!(off, buf.len());
                // A flipped tag bit is caught whichever backend sealed it.
                let mut bad = wire.clone();
                let last = bad.len() - 1;
                bad[last] ^= 0x80;
                let mut o = Opener::with_backend(k, b).unwrap();
                let mut first = bad;
                let mut off = 0;
                for i in 0..SIZES.len() - 1 {
                    match o.open(seq(i), &mut first[off..]) {
                        Ok(Opened::Packet { consumed, .. }) => off += consumed,
                        r => panic!("{}: {r:?}", k.cipher),
                    }
                }
                assert!(
                    matches!(o.open(seq(SIZES.len() - 1), &mut first[off..]), Err(Error::Crypto(_))),
                    "{}: opened by {b:?}",
                    k.cipher
                );
            }
        }
    }
    #[cfg(feature = "aws-lc")]
    assert_eq!((Backend::DEFAULT, Backend::ALL.len()), (Backend::AwsLc, 2));
    #[cfg(not(feature = "aws-lc"))]
    assert_eq!((Backend::DEFAULT, Backend::ALL.len()), (Backend::RustCrypto, 1));
}
