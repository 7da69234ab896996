//! Random padding bytes for the binary packet protocol (RFC 4253 section 6: padding is random),
//! drawn from a pool so that a packet does not cost a call into the generator.

use crate::random::Random;

/// Padding needs a few random bytes per packet; asking the generator (a system call) once per
/// packet costs more than the padding is worth, so they come from a pool refilled 256 at a time.
pub(super) struct PadPool {
    bytes: [u8; 256],
    used: usize,
}

impl Default for PadPool {
    fn default() -> Self {
        PadPool { bytes: [0; 256], used: 256 }
    }
}

impl Drop for PadPool {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.bytes);
    }
}

pub(super) struct PadSource<'a> {
    pub(super) pool: &'a mut PadPool,
    pub(super) rng: &'a mut dyn Random,
}

impl Random for PadSource<'_> {
    fn fill(&mut self, buf: &mut [u8]) {
        let pool = &mut *self.pool;
        if buf.len() > pool.bytes.len() {
            self.rng.fill(buf);
            return;
        }
        if pool.bytes.len() - pool.used < buf.len() {
            self.rng.fill(&mut pool.bytes);
            pool.used = 0;
        }
        let end = pool.used + buf.len();
        if let Some(src) = pool.bytes.get_mut(pool.used..end) {
            buf.copy_from_slice(src);
            src.fill(0);
        }
        pool.used = end;
    }
}
