//! Size floor of sshbridge's `--no-default-features` C library (issue 16), measured by
//! scripts/bench.sh: a cdylib with only what every such build must contain and no SSH code.
//! Rust std as sshbridge uses it (threads, TCP and Unix sockets, poll, catch_unwind at the C
//! boundary, formatting, `log`, `parking_lot`) and, with the `crypto` feature, each RustCrypto
//! primitive of the modern algorithm set called once, with the same types and calls as
//! sshbridge (so the same generic code is instantiated): AES-128/256-GCM, AES-CTR, ChaCha20 +
//! Poly1305 (OpenSSH's construction), HMAC-SHA-256/512 and HMAC-SHA-1 (hashed known_hosts
//! names), SHA-1/256/512, X25519 + ML-KEM-768, Ed25519, PEM/PKCS#8/SEC1 keys, getrandom.
//! Without `crypto`: std alone.
//!
//! Keep its dependencies (Cargo.toml) in step with ../../Cargo.toml. Each primitive is behind
//! `#[inline(never)]` so `nm` shows it on its own.

use std::hint::black_box;
use std::io::{Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};

#[cfg(feature = "crypto")]
mod crypto {
    use aes_gcm::aead::AeadInOut;
    use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit};
    use chacha20::cipher::{KeyIvInit, StreamCipher};
    use chacha20::ChaCha20Legacy;
    use hmac::{Hmac, Mac};
    use ml_kem::kem::{Decapsulate, Encapsulate, KeyExport};
    use ml_kem::MlKem768;
    use pkcs8::der::asn1::{OctetStringRef, UintRef};
    use pkcs8::der::{self, Decode, Reader as _, SliceReader};
    use pkcs8::{ObjectIdentifier, PrivateKeyInfoRef};
    use poly1305::Poly1305;
    use sha1::Sha1;
    use sha2::{Digest, Sha256, Sha512};
    use subtle::ConstantTimeEq;
    use zeroize::{Zeroize, Zeroizing};

    /// Same adapter as sshbridge's random.rs (rand_core 0.10 TryRng over getrandom).
    pub struct OsRng;
    impl rand_core::TryRng for OsRng {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            let mut b = [0u8; 4];
            fill(&mut b);
            Ok(u32::from_le_bytes(b))
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            let mut b = [0u8; 8];
            fill(&mut b);
            Ok(u64::from_le_bytes(b))
        }
        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Self::Error> {
            fill(dest);
            Ok(())
        }
    }
    impl rand_core::TryCryptoRng for OsRng {}

    pub fn fill(buf: &mut [u8]) {
        while getrandom::fill(buf).is_err() {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    fn key<const N: usize>(p: &[u8]) -> Zeroizing<[u8; N]> {
        let mut k = Zeroizing::new([0u8; N]);
        for (o, i) in k.iter_mut().zip(p.iter()) {
            *o = *i;
        }
        k
    }

    // AES-GCM exactly as engine.rs: boxed keys, encrypt/decrypt_inout_detached, 12-byte nonce.
    #[inline(never)] // only so the symbol table shows each primitive
    pub fn gcm(p: &[u8], buf: &mut [u8]) -> i32 {
        enum GcmKey {
            Aes128(Box<Aes128Gcm>),
            Aes256(Box<Aes256Gcm>),
        }
        let k = if p.len() & 1 == 0 {
            match Aes128Gcm::new_from_slice(&key::<16>(p)[..]) {
                Ok(k) => GcmKey::Aes128(Box::new(k)),
                Err(_) => return -1,
            }
        } else {
            match Aes256Gcm::new_from_slice(&key::<32>(p)[..]) {
                Ok(k) => GcmKey::Aes256(Box::new(k)),
                Err(_) => return -1,
            }
        };
        let nonce: [u8; 12] = *key::<12>(p.get(3..).unwrap_or(&[]));
        let (aad, body) = buf.split_at_mut(4.min(buf.len()));
        let r = match &k {
            GcmKey::Aes128(k) => k.encrypt_inout_detached((&nonce).into(), aad, body.into()),
            GcmKey::Aes256(k) => k.encrypt_inout_detached((&nonce).into(), aad, body.into()),
        };
        let tag: [u8; 16] = match r {
            Ok(t) => t.into(),
            Err(_) => return -2,
        };
        let ok = match &k {
            GcmKey::Aes128(k) => k.decrypt_inout_detached((&nonce).into(), aad, body.into(), (&tag).into()).is_ok(),
            GcmKey::Aes256(k) => k.decrypt_inout_detached((&nonce).into(), aad, body.into(), (&tag).into()).is_ok(),
        };
        ok as i32
    }

    // AES-CTR as engine.rs: Ctr128BE over Aes128/192/256, new_from_slices.
    #[inline(never)] // only so the symbol table shows each primitive
    pub fn aes_ctr(p: &[u8], buf: &mut [u8]) -> i32 {
        enum AesCtr {
            Aes128(Box<ctr::Ctr128BE<aes::Aes128>>),
            Aes192(Box<ctr::Ctr128BE<aes::Aes192>>),
            Aes256(Box<ctr::Ctr128BE<aes::Aes256>>),
        }
        let iv = key::<16>(p);
        let klen = [16usize, 24, 32][p.len() % 3];
        let k = key::<32>(p.get(1..).unwrap_or(&[]));
        let c = match klen {
            16 => ctr::Ctr128BE::new_from_slices(&k[..16], &iv[..]).ok().map(|c| AesCtr::Aes128(Box::new(c))),
            24 => ctr::Ctr128BE::new_from_slices(&k[..24], &iv[..]).ok().map(|c| AesCtr::Aes192(Box::new(c))),
            _ => ctr::Ctr128BE::new_from_slices(&k[..32], &iv[..]).ok().map(|c| AesCtr::Aes256(Box::new(c))),
        };
        match c {
            Some(AesCtr::Aes128(mut c)) => c.apply_keystream(buf),
            Some(AesCtr::Aes192(mut c)) => c.apply_keystream(buf),
            Some(AesCtr::Aes256(mut c)) => c.apply_keystream(buf),
            None => return -1,
        }
        buf.first().copied().unwrap_or(0) as i32
    }

    // chacha20-poly1305@openssh.com as engine.rs (RcChaChaPoly seal + open).
    #[inline(never)] // only so the symbol table shows each primitive
    pub fn chachapoly(p: &[u8], pkt: &mut [u8]) -> i32 {
        let main = key::<32>(p);
        let length = key::<32>(p.get(32..).unwrap_or(&[]));
        let seq = p.len() as u32;
        let nonce = u64::from(seq).to_be_bytes();
        let body_cipher = || {
            let mut c = ChaCha20Legacy::new((&*main).into(), (&nonce).into());
            let mut block0 = Zeroizing::new([0u8; 64]);
            c.apply_keystream(&mut *block0);
            let mut poly_key = Zeroizing::new([0u8; 32]);
            for (k, b) in poly_key.iter_mut().zip(block0.iter()) {
                *k = *b;
            }
            (c, Poly1305::new((&*poly_key).into()))
        };
        // seal
        let (len, body) = pkt.split_at_mut(4.min(pkt.len()));
        let mut l = [0u8; 4];
        l.copy_from_slice(len);
        ChaCha20Legacy::new((&*length).into(), (&nonce).into()).apply_keystream(&mut l);
        len.copy_from_slice(&l);
        let (mut c, poly) = body_cipher();
        c.apply_keystream(body);
        let tag: [u8; 16] = poly.compute_unpadded(pkt).into();
        // open
        let (mut c, poly) = body_cipher();
        let expected = poly.compute_unpadded(pkt);
        if !bool::from(expected.as_slice().ct_eq(&tag)) {
            return -1;
        }
        if let Some(body) = pkt.get_mut(4..) {
            c.apply_keystream(body);
        }
        1
    }

    // HMAC as engine.rs MacKey (clone per packet, update seq || data) and known_hosts (SHA-1).
    #[inline(never)] // only so the symbol table shows each primitive
    pub fn hmacs(p: &[u8], out: &mut [u8]) -> i32 {
        #[derive(Clone)]
        enum MacKey {
            Sha256(Hmac<Sha256>),
            Sha512(Hmac<Sha512>),
        }
        fn run<M: Mac + Clone>(m: &M, seq: u32, data: &[u8], out: &mut [u8]) -> usize {
            let mut m = m.clone();
            m.update(&seq.to_be_bytes());
            m.update(data);
            let tag = m.finalize().into_bytes();
            for (o, t) in out.iter_mut().zip(tag.iter()) {
                *o = *t;
            }
            tag.len()
        }
        let k = if p.len() & 1 == 0 {
            MacKey::Sha256(match KeyInit::new_from_slice(&key::<32>(p)[..]) {
                Ok(k) => k,
                Err(_) => return -1,
            })
        } else {
            MacKey::Sha512(match KeyInit::new_from_slice(&key::<64>(p)[..]) {
                Ok(k) => k,
                Err(_) => return -1,
            })
        };
        let n = match &k {
            MacKey::Sha256(m) => run(m, 7, p, out),
            MacKey::Sha512(m) => run(m, 7, p, out),
        };
        // verify in constant time
        let mut exp = [0u8; 64];
        let n2 = match &k {
            MacKey::Sha256(m) => run(m, 7, p, &mut exp),
            MacKey::Sha512(m) => run(m, 7, p, &mut exp),
        };
        let ok = bool::from(exp[..n2].ct_eq(&out[..n.min(out.len())]));
        // known_hosts hash_host: HMAC-SHA1 keyed by the salt, base64.
        let salt = key::<20>(p);
        let d = match <Hmac<Sha1> as KeyInit>::new_from_slice(&salt[..]) {
            Ok(mut m) => {
                m.update(p);
                m.finalize().into_bytes()
            }
            Err(_) => return -2,
        };
        let s = format!("|1|{}|{}", base64ct::Base64::encode_string(&salt[..]), base64ct::Base64::encode_string(&d));
        (s.len() + n + ok as usize) as i32
    }
    use base64ct::Encoding;

    #[inline(never)] // only so the symbol table shows each primitive
    pub fn hashes(p: &[u8], out: &mut [u8]) -> i32 {
        let mut d = Sha256::new().chain_update(p).chain_update(&p[p.len() / 2..]).finalize();
        let k = Zeroizing::new(d.to_vec());
        d.zeroize();
        let e = Sha512::digest(p);
        let s = Sha1::digest(p);
        for (o, i) in out.iter_mut().zip(k.iter().chain(e.iter()).chain(s.iter())) {
            *o = *i;
        }
        (k.len() + e.len() + s.len()) as i32
    }

    // X25519 + ML-KEM-768 as kex/hybrid.rs (client start/finish and server respond).
    #[inline(never)] // only so the symbol table shows each primitive
    pub fn hybrid(p: &[u8], out: &mut [u8]) -> i32 {
        let mut seed = ml_kem::Seed::default();
        fill(&mut seed[..]);
        let dk = ml_kem::DecapsulationKey::<MlKem768>::from_seed(seed);
        seed.zeroize();
        let mut value = Vec::with_capacity(1184 + 32);
        value.extend_from_slice(&dk.encapsulation_key().to_bytes()[..]);
        let mut xs = Zeroizing::new([0u8; 32]);
        fill(&mut xs[..]);
        let x25519 = x25519_dalek::StaticSecret::from(*xs);
        value.extend_from_slice(x25519_dalek::PublicKey::from(&x25519).as_bytes());

        // server side: respond
        let (pk, x) = value.split_at(1184);
        let Ok(ekey) = ml_kem::Key::<ml_kem::EncapsulationKey<MlKem768>>::try_from(pk) else { return -1 };
        let Ok(ek) = ml_kem::EncapsulationKey::<MlKem768>::new(&ekey) else { return -2 };
        let (ct, mut ss) = ek.encapsulate_with_rng(&mut OsRng);
        let mut reply = Vec::with_capacity(1088 + 32);
        reply.extend_from_slice(&ct[..]);
        let sec2 = x25519_dalek::StaticSecret::from(*key::<32>(p));
        let x: [u8; 32] = x.try_into().unwrap_or([0; 32]);
        let shared = sec2.diffie_hellman(&x25519_dalek::PublicKey::from(x));
        if !shared.was_contributory() {
            return -3;
        }
        reply.extend_from_slice(x25519_dalek::PublicKey::from(&sec2).as_bytes());

        // client side: finish
        let (ctb, x2) = reply.split_at(1088);
        let Ok(mut ss2) = dk.decapsulate_slice(black_box(ctb)) else { return -4 };
        let x2: [u8; 32] = x2.try_into().unwrap_or([0; 32]);
        let shared2 = x25519.diffie_hellman(&x25519_dalek::PublicKey::from(x2));
        let mut d = Sha256::new().chain_update(&ss2[..]).chain_update(shared2.as_bytes()).finalize();
        for (o, i) in out.iter_mut().zip(d.iter()) {
            *o = *i;
        }
        let same = ss[..] == ss2[..] && shared.as_bytes() == shared2.as_bytes();
        d.zeroize();
        ss.zeroize();
        ss2.zeroize();
        same as i32
    }
    use std::hint::black_box;

    // Ed25519 as keys/private.rs + public.rs (sign with Signer, verify_strict).
    #[inline(never)] // only so the symbol table shows each primitive
    pub fn ed25519(p: &[u8], out: &mut [u8]) -> i32 {
        use signature::Signer;
        let seed = key::<32>(p);
        let sk = ed25519_dalek::SigningKey::from_bytes(&seed);
        let pk = sk.verifying_key().to_bytes();
        let sig: ed25519_dalek::Signature = sk.sign(p);
        let sb = sig.to_bytes();
        for (o, i) in out.iter_mut().zip(sb.iter()) {
            *o = *i;
        }
        let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(&pk) else { return -1 };
        let sig = ed25519_dalek::Signature::from_bytes(&sb);
        vk.verify_strict(p, &sig).is_ok() as i32
    }

    const OID_EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    const OID_ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

    // PEM / PKCS#8 / SEC1 / OpenSSL-DSA DER parsing as keys/pem.rs.
    #[inline(never)] // only so the symbol table shows each primitive
    pub fn pem(p: &[u8]) -> i32 {
        let Ok(text) = std::str::from_utf8(p) else { return -1 };
        let (label, der) = match der::pem::decode_vec(text.as_bytes()) {
            Ok(v) => v,
            Err(e) => return format!("malformed PEM: {e}").len() as i32,
        };
        let der = Zeroizing::new(der);
        match label {
            "EC PRIVATE KEY" => match sec1::EcPrivateKey::from_der(&der) {
                Ok(k) => k.parameters.and_then(|p| p.named_curve()).map_or(0, |c| c.as_bytes().len() as i32),
                Err(e) => -(format!("{e}").len() as i32),
            },
            "DSA PRIVATE KEY" => {
                let Ok(mut reader) = SliceReader::new(&der) else { return -2 };
                let r = reader.sequence(|s| -> Result<_, der::Error> {
                    Ok((
                        UintRef::decode(s)?,
                        UintRef::decode(s)?,
                        UintRef::decode(s)?,
                        UintRef::decode(s)?,
                        UintRef::decode(s)?,
                        UintRef::decode(s)?,
                    ))
                });
                match r {
                    Ok((a, ..)) => a.as_bytes().len() as i32,
                    Err(e) => -(format!("{e}").len() as i32),
                }
            }
            _ => {
                let info = match PrivateKeyInfoRef::from_der(&der) {
                    Ok(i) => i,
                    Err(e) => return -(format!("{e}").len() as i32),
                };
                let private_key = info.private_key.as_bytes();
                let public_key = info.public_key.and_then(|b| b.as_bytes());
                match info.algorithm.oid {
                    OID_ED25519 => {
                        let Ok(seed) = <&OctetStringRef>::from_der(private_key) else { return -3 };
                        let Ok(seed) = <[u8; 32]>::try_from(seed.as_bytes()) else { return -4 };
                        let seed = Zeroizing::new(seed);
                        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
                        let derived = key.verifying_key().to_bytes();
                        (public_key.is_none_or(|g| g == derived)) as i32
                    }
                    OID_EC => info.algorithm.parameters_oid().map_or(-5, |c| c.as_bytes().len() as i32),
                    other => -(format!("unsupported key type: PKCS#8 algorithm {other}").len() as i32),
                }
            }
        }
    }

    // ssh-key: parse an OpenSSH private key and a public key line, and write a key back
    // (sshbridge's to_openssh_with path: PrivateKey::new(Ed25519Keypair) + to_openssh(LF)).
}

#[inline(never)]
fn std_part(sel: u32, p: &[u8], out: &mut [u8]) -> i32 {
    match sel {
        // thread spawn + join, with a parking_lot mutex shared across it and a log macro
        100 => {
            let m = std::sync::Arc::new(parking_lot::Mutex::new(Vec::<u8>::new()));
            let m2 = m.clone();
            let data = p.to_vec();
            let h = std::thread::Builder::new()
                .name("floor".into())
                .stack_size(black_box(256 * 1024))
                .spawn(move || {
                    m2.lock().extend_from_slice(&data);
                    log::debug!(target: "sizefloor", "worker got {} bytes", data.len());
                })
                .ok();
            let joined = h.map(|h| h.join().is_ok()).unwrap_or(false);
            let v = m.lock();
            if joined {
                v.len() as i32
            } else {
                -1
            }
        }
        // TcpStream::connect to an address built from the input
        101 => {
            let Ok(s) = std::str::from_utf8(p) else { return -1 };
            let addr = format!("{}:{}", s, 1024 + p.len());
            match std::net::TcpStream::connect(addr.as_str()) {
                Ok(mut t) => {
                    let _ = t.set_nodelay(true);
                    let _ = t.write_all(p);
                    let mut b = [0u8; 16];
                    t.read(&mut b).map_or(-2, |n| n as i32)
                }
                Err(e) => {
                    log::warn!(target: "sizefloor", "connect {addr}: {e}");
                    -(e.raw_os_error().unwrap_or(1))
                }
            }
        }
        // UnixStream::pair + libc::poll
        102 => {
            let Ok((mut a, mut b)) = std::os::unix::net::UnixStream::pair() else { return -1 };
            let _ = a.write_all(p);
            use std::os::fd::AsRawFd;
            let mut fds = [libc::pollfd { fd: b.as_raw_fd(), events: libc::POLLIN, revents: 0 }];
            // SAFETY: fds is a valid array of one pollfd.
            let r = unsafe { libc::poll(fds.as_mut_ptr(), 1, black_box(100)) };
            if r <= 0 {
                return -2;
            }
            b.read(out).map_or(-3, |n| n as i32)
        }
        // format! of an integer and a string; return a Vec's length
        103 => {
            let s = format!("{} bytes: {}", p.len(), String::from_utf8_lossy(p));
            let v: Vec<u8> = s.into_bytes();
            for (o, i) in out.iter_mut().zip(v.iter()) {
                *o = *i;
            }
            v.len() as i32
        }
        // a panic caught at the boundary
        104 => {
            let v: Vec<u8> = Vec::new();
            v[black_box(p.len())] as i32
        }
        _ => -100,
    }
}

#[cfg(feature = "crypto")]
fn crypto_part(sel: u32, p: &[u8], out: &mut [u8]) -> Option<i32> {
    let mut buf = p.to_vec();
    Some(match sel {
        0 => crypto::gcm(p, &mut buf),
        1 => crypto::aes_ctr(p, &mut buf),
        2 => crypto::chachapoly(p, &mut buf),
        3 => crypto::hmacs(p, out),
        4 => crypto::hashes(p, out),
        5 => crypto::hybrid(p, out),
        6 => crypto::ed25519(p, out),
        7 => crypto::pem(p),
        9 => {
            crypto::fill(out);
            out.len() as i32
        }
        _ => return None,
    })
}

#[cfg(not(feature = "crypto"))]
fn crypto_part(_: u32, _: &[u8], _: &mut [u8]) -> Option<i32> {
    None
}

/// # Safety
/// `p` must point to `n` readable bytes and `out` to 256 writable bytes.
#[no_mangle]
pub unsafe extern "C" fn floor_run(sel: u32, p: *const u8, n: usize, out: *mut u8) -> i32 {
    let sel = black_box(sel);
    let p: &[u8] = if p.is_null() { &[] } else { std::slice::from_raw_parts(black_box(p), black_box(n)) };
    let out: &mut [u8] = if out.is_null() { &mut [] } else { std::slice::from_raw_parts_mut(black_box(out), 256) };
    catch_unwind(AssertUnwindSafe(|| match crypto_part(sel, p, out) {
        Some(r) => r,
        None => std_part(sel, p, out),
    }))
    .unwrap_or(-99)
}
