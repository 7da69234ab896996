//! Randomness is passed into the sans-IO core (DESIGN: no global RNG below `runtime`). This is
//! the trait it is passed as, and an adapter to the `rand_core` traits that RustCrypto wants
//! (RSA blinding).

/// A cryptographically secure source of random bytes.
pub trait Random: Send {
    fn fill(&mut self, buf: &mut [u8]);
}

/// Adapter so a `&mut dyn Random` can be handed to RustCrypto APIs (`rand_core` 0.10: an
/// infallible `TryRng` marked `TryCryptoRng`, hence `Rng + CryptoRng`).
pub struct CryptoRng<'a>(pub &'a mut dyn Random);

impl rand_core::TryRng for CryptoRng<'_> {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Self::Error> {
        self.0.fill(dest);
        Ok(())
    }
}

impl rand_core::TryCryptoRng for CryptoRng<'_> {}

/// A deterministic generator for tests only (ChaCha20 keystream from a seed).
#[cfg(any(test, feature = "test-util"))]
pub struct TestRng(u64);

#[cfg(any(test, feature = "test-util"))]
impl TestRng {
    pub fn new(seed: u64) -> Self {
        TestRng(seed)
    }
}

#[cfg(any(test, feature = "test-util"))]
impl Random for TestRng {
    fn fill(&mut self, buf: &mut [u8]) {
        use chacha20::cipher::{KeyIvInit, StreamCipher};
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&self.0.to_le_bytes());
        self.0 = self.0.wrapping_add(1);
        buf.fill(0);
        let mut c = chacha20::ChaCha20::new(&key.into(), &[0u8; 12].into());
        c.apply_keystream(buf);
    }
}
