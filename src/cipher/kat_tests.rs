//! Known answers: published vectors where they exist (the chacha20-poly1305@openssh.com worked
//! example of draft-ietf-sshm-chacha20-poly1305 Appendix A, the GCM specification's test cases
//! 4 and 16, NIST SP 800-38A F.5 for AES-CTR), and independent recomputations of each packet
//! construction with the primitives driven differently from the implementation.

use super::test_backends::backend;
use super::*;
use crate::random::Random;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// Hands out fixed bytes as "random" padding.
struct FixedRng(Vec<u8>);

impl Random for FixedRng {
    fn fill(&mut self, buf: &mut [u8]) {
        let n = buf.len();
        buf.copy_from_slice(&self.0[..n]);
        self.0.drain(..n);
    }
}

fn keys(cipher: Cipher, mac: Option<Mac>, key: &[u8], iv: &[u8], mac_key: &[u8]) -> DirectionKeys {
    DirectionKeys { cipher, mac, key: key.to_vec(), iv: iv.to_vec(), mac_key: mac_key.to_vec() }
}

/// The plaintext packet, built here from RFC 4253 section 6 / OpenSSH's padding rule without
/// the implementation's help.
fn plain_packet(payload: &[u8], padding: &[u8]) -> Vec<u8> {
    let mut v = ((1 + payload.len() + padding.len()) as u32).to_be_bytes().to_vec();
    v.push(padding.len() as u8);
    v.extend_from_slice(payload);
    v.extend_from_slice(padding);
    v
}

fn open_all(o: &mut Opener, seq: u32, wire: &mut [u8]) -> Vec<u8> {
    match o.open(seq, wire).unwrap() {
        Opened::Packet { consumed, payload } => {
            assert_eq!(consumed, wire.len());
            wire[payload].to_vec()
        }
        r => panic!("{r:?}"),
    }
}

// ---- chacha20-poly1305@openssh.com ----

both_backends!(chacha_published_worked_example);
/// draft-ietf-sshm-chacha20-poly1305-02 Appendix A: a CHANNEL_DATA packet, seq 7.
fn chacha_published_worked_example() {
    let key = hex("8bbff6855fc102338c373e73aac0c914f076a905b2444a32eecaffeae22becc5
                   e9b7a7a5825a8249346ec1c28301cf394543fc7569887d76e168f37562ac0740");
    let body = hex("065e00000000000000384c6f72656d20697073756d20646f6c6f722073697420
                    616d65742c20636f6e7365637465747572206164697069736963696e6720656c
                    69744e43e804dc6c");
    let expected = hex("2c3ecce4
                        a5bc05895bf07a7ba956b6c68829ac7c83b780b7000ecde745afc705bbc378ce
                        03a280236b87b53bed5839662302b164b6286a48cd1e097138e3cb909b8b2b82
                        9dd18d2a35ff82d9
                        95349e855bf02c298ef775f2d1a7e8b8");
    assert_eq!(body.len(), 72);
    let payload = &body[1..66];
    let padding = &body[66..];
    let k = keys(Cipher::Chacha20Poly1305, None, &key, &[], &[]);
    let mut wire = Vec::new();
    Sealer::with_backend(&k, backend()).unwrap().seal(7, payload, &mut FixedRng(padding.to_vec()), &mut wire);
    assert_eq!(wire, expected);
    assert_eq!(open_all(&mut Opener::with_backend(&k, backend()).unwrap(), 7, &mut wire), payload);
}

/// The construction recomputed with the IETF ChaCha20 (96-bit nonce 0^32 || seq, which is the
/// djb state with a zero high counter word), an explicit seek to block 1 for the payload, a
/// separate instance for the Poly1305 key, and Poly1305 fed whole blocks then the tail.
fn chacha_reference(key: &[u8], seq: u32, plain: &[u8]) -> Vec<u8> {
    use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
    use chacha20::{ChaCha20, Key};
    use poly1305::universal_hash::{KeyInit, UniversalHash};
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&u64::from(seq).to_be_bytes());
    let (k2, k1) = key.split_at(32);
    let mut out = plain.to_vec();
    let (k1, k2) = (Key::try_from(k1).unwrap(), Key::try_from(k2).unwrap());
    ChaCha20::new(&k1, &nonce.into()).apply_keystream(&mut out[..4]);
    let mut c = ChaCha20::new(&k2, &nonce.into());
    c.seek(64u64);
    c.apply_keystream(&mut out[4..]);
    let mut poly_key = [0u8; 32];
    ChaCha20::new(&k2, &nonce.into()).apply_keystream(&mut poly_key);
    let mut mac = poly1305::Poly1305::new(&poly_key.into());
    let whole = out.len() / 16 * 16;
    let blocks: Vec<poly1305::Block> = out[..whole].chunks(16).map(|b| poly1305::Block::try_from(b).unwrap()).collect();
    mac.update(&blocks);
    let tag = mac.compute_unpadded(&out[whole..]);
    out.extend_from_slice(&tag);
    out
}

both_backends!(chacha_matches_independent_computation);
fn chacha_matches_independent_computation() {
    let key: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
    let k = keys(Cipher::Chacha20Poly1305, None, &key, &[], &[]);
    let mut s = Sealer::with_backend(&k, backend()).unwrap();
    for (i, &(seq, n)) in
        [(0u32, 0usize), (1, 1), (0x0102_0304, 5), (0x8000_0000, 100), (u32::MAX, 1000), (77, 35000)].iter().enumerate()
    {
        let payload: Vec<u8> = (0..n).map(|j| (j * 3 + i) as u8).collect();
        // Padding rule for an 8-byte block with the length excluded, at least 16 bytes total.
        let mut pad = 8 - (1 + n) % 8;
        if pad < 4 {
            pad += 8;
        }
        while 5 + n + pad < 16 {
            pad += 8;
        }
        let padding: Vec<u8> = (0..pad).map(|j| 0xa0 + j as u8).collect();
        let mut wire = Vec::new();
        s.seal(seq, &payload, &mut FixedRng(padding.clone()), &mut wire);
        assert_eq!(wire, chacha_reference(&key, seq, &plain_packet(&payload, &padding)), "seq {seq} len {n}");
        assert_eq!(open_all(&mut Opener::with_backend(&k, backend()).unwrap(), seq, &mut wire), payload);
    }
}

// ---- AES-GCM ----

both_backends!(gcm_published_vectors);
/// The GCM specification's test cases 4 (AES-128) and 16 (AES-256): 60-byte plaintext, 20-byte
/// AAD, IV cafebabefacedbaddecaf888, which our 4-byte fixed field || 8-byte counter must
/// reproduce exactly.
fn gcm_published_vectors() {
    let p = hex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72
                 1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
    let a = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
    let iv = hex("cafebabefacedbaddecaf888");
    let cases = [
        (
            "feffe9928665731c6d6a8f9467308308",
            "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e
             21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
            "5bc94fbc3221a5db94fae95ae7121a47",
        ),
        (
            "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa
             8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
            "76fc6ece0f4e1768cddf8853bb2d551b",
        ),
    ];
    for (key, c, t) in cases {
        let g = engine::Gcm::new(backend(), &hex(key), &iv).unwrap();
        let mut buf = p.clone();
        let tag = g.encrypt_with_aad(&a, &mut buf);
        assert_eq!(buf, hex(c));
        assert_eq!(tag, hex(t));
    }
}

both_backends!(gcm_packets_match_independent_computation);
/// Packets recomputed with aes-gcm's one-shot `Aead::encrypt` (length as AAD), the nonce's
/// invocation counter counted here: IV, IV+1, IV+2, including the 64-bit wrap.
fn gcm_packets_match_independent_computation() {
    use aes_gcm::aead::{Aead, Payload};
    use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit};
    for (cipher, key) in [
        (Cipher::Aes128Gcm, hex("feffe9928665731c6d6a8f9467308308")),
        (Cipher::Aes256Gcm, hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")),
    ] {
        for iv in [hex("cafebabefacedbaddecaf888"), hex("01020304fffffffffffffffe")] {
            let k = keys(cipher, None, &key, &iv, &[]);
            let mut s = Sealer::with_backend(&k, backend()).unwrap();
            let mut o = Opener::with_backend(&k, backend()).unwrap();
            let mut counter = u64::from_be_bytes(iv[4..].try_into().unwrap());
            for (i, n) in [3usize, 0, 500].into_iter().enumerate() {
                let payload: Vec<u8> = (0..n).map(|j| (j + i) as u8).collect();
                let mut pad = 16 - (1 + n) % 16;
                if pad < 4 {
                    pad += 16;
                }
                let padding = vec![0x33u8; pad];
                let plain = plain_packet(&payload, &padding);
                let mut nonce = [0u8; 12];
                nonce[..4].copy_from_slice(&iv[..4]);
                nonce[4..].copy_from_slice(&counter.to_be_bytes());
                let msg = Payload { msg: &plain[4..], aad: &plain[..4] };
                let sealed = match cipher {
                    Cipher::Aes128Gcm => Aes128Gcm::new_from_slice(&key).unwrap().encrypt(&nonce.into(), msg),
                    _ => Aes256Gcm::new_from_slice(&key).unwrap().encrypt(&nonce.into(), msg),
                }
                .unwrap();
                let mut expected = plain[..4].to_vec();
                expected.extend_from_slice(&sealed);
                let mut wire = Vec::new();
                s.seal(i as u32, &payload, &mut FixedRng(padding), &mut wire);
                assert_eq!(wire, expected, "{cipher} packet {i}");
                assert_eq!(open_all(&mut o, i as u32, &mut wire), payload);
                counter = counter.wrapping_add(1);
            }
        }
    }
}

// ---- AES-CTR with HMAC ----

const CTR_KEY: &str = "2b7e151628aed2a6abf7158809cf4f3c";
const CTR_IV: &str = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
const CTR_PLAIN: &str = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51
                         30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";
const CTR_CIPHER: &str = "874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff
                          5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee";

/// NIST SP 800-38A F.5.1 keystream (plaintext XOR ciphertext), 4 blocks.
fn nist_keystream() -> Vec<u8> {
    hex(CTR_PLAIN).iter().zip(hex(CTR_CIPHER)).map(|(p, c)| p ^ c).collect()
}

fn hmac_reference(mac: Mac, key: &[u8], seq: u32, data: &[u8]) -> Vec<u8> {
    use hmac::Hmac;
    fn one<M: hmac::Mac + hmac::KeyInit>(key: &[u8], seq: u32, data: &[u8]) -> Vec<u8> {
        let mut m = <M as hmac::KeyInit>::new_from_slice(key).unwrap();
        m.update(&seq.to_be_bytes());
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }
    match mac {
        Mac::HmacSha256 | Mac::HmacSha256Etm => one::<Hmac<sha2::Sha256>>(key, seq, data),
        Mac::HmacSha512 | Mac::HmacSha512Etm => one::<Hmac<sha2::Sha512>>(key, seq, data),
        #[cfg(feature = "legacy")]
        Mac::HmacSha1 => one::<Hmac<sha1::Sha1>>(key, seq, data),
    }
}

both_backends!(ctr_packets_follow_nist_keystream_and_hmac_composition);
/// Two 32-byte packets under aes128-ctr use exactly the four NIST keystream blocks in order
/// (the counter runs on across packets), and the MAC is HMAC(seq || plaintext packet) for MtE,
/// HMAC(seq || length || ciphertext) for EtM.
fn ctr_packets_follow_nist_keystream_and_hmac_composition() {
    let ks = nist_keystream();
    for &mac in Mac::ALL {
        let mac_key: Vec<u8> = (0..mac.key_len() as u8).collect();
        let k = keys(Cipher::Aes128Ctr, Some(mac), &hex(CTR_KEY), &hex(CTR_IV), &mac_key);
        let mut s = Sealer::with_backend(&k, backend()).unwrap();
        let mut o = Opener::with_backend(&k, backend()).unwrap();
        for (i, seq) in [(0usize, 1000u32), (1, 1001)] {
            // 32 bytes of encrypted data per packet either way.
            let (n, pad) = if mac.is_etm() { (27, 4) } else { (11, 16) };
            let payload: Vec<u8> = (0..n).map(|j| (j * 5 + i) as u8).collect();
            let padding = vec![0xc3u8; pad];
            let plain = plain_packet(&payload, &padding);
            let mut wire = Vec::new();
            s.seal(seq, &payload, &mut FixedRng(padding), &mut wire);
            let (skip, enc_len) = if mac.is_etm() { (4, 32) } else { (0, 32) };
            assert_eq!(wire.len(), skip + enc_len + mac.out_len());
            assert_eq!(wire[..skip], plain[..skip], "{mac}: EtM length in clear");
            let got_ks: Vec<u8> = wire[skip..skip + enc_len].iter().zip(&plain[skip..]).map(|(c, p)| c ^ p).collect();
            assert_eq!(got_ks, ks[32 * i..32 * (i + 1)], "{mac} packet {i}: keystream");
            let mac_input = if mac.is_etm() { &wire[..36] } else { &plain[..] };
            assert_eq!(wire[skip + enc_len..], hmac_reference(mac, &mac_key, seq, mac_input), "{mac} packet {i}: MAC");
            assert_eq!(open_all(&mut o, seq, &mut wire), payload);
        }
    }
}

both_backends!(ctr_key_sizes_match_nist_first_block);
/// NIST SP 800-38A F.5.3 and F.5.5, first block: key sizes 192 and 256 are wired correctly.
fn ctr_key_sizes_match_nist_first_block() {
    let p1 = &hex(CTR_PLAIN)[..16];
    for (cipher, key, c1) in [
        (Cipher::Aes128Ctr, CTR_KEY, "874d6191b620e3261bef6864990db6ce"),
        (Cipher::Aes192Ctr, "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b", "1abc932417521ca24f2b0459fe7e6e0b"),
        (
            Cipher::Aes256Ctr,
            "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
            "601ec313775789a5b7a7f504bbf3d228",
        ),
    ] {
        let mac = Mac::HmacSha256;
        let k = keys(cipher, Some(mac), &hex(key), &hex(CTR_IV), &[7u8; 32]);
        let payload = b"0123456789a";
        let padding = vec![0u8; 16];
        let plain = plain_packet(payload, &padding);
        let mut wire = Vec::new();
        Sealer::with_backend(&k, backend()).unwrap().seal(0, payload, &mut FixedRng(padding), &mut wire);
        let ks: Vec<u8> = wire[..16].iter().zip(&plain).map(|(c, p)| c ^ p).collect();
        let want: Vec<u8> = p1.iter().zip(hex(c1)).map(|(p, c)| p ^ c).collect();
        assert_eq!(ks, want, "{cipher}");
    }
}
