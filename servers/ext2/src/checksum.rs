//! The journal's checksum: FNV-1a (64-bit) taken a little-endian 64-bit word at a
//! time instead of a byte at a time, eight times fewer multiplications for the
//! megabytes a sync hashes. It only has to tell a whole transaction from a torn or
//! mixed one, not resist an adversary.

/// The FNV-1a 64-bit offset basis.
const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
/// The FNV 64-bit prime.
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// A running checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checksum(u64);

impl Checksum {
    /// The checksum of nothing.
    pub fn new() -> Checksum {
        Checksum(OFFSET_BASIS)
    }

    /// Adds bytes (a trailing partial word is zero-padded).
    pub fn update(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for word in &mut chunks {
            let mut le = [0; 8];
            le.copy_from_slice(word);
            self.word(u64::from_le_bytes(le));
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            let mut le = [0; 8];
            le[..tail.len()].copy_from_slice(tail);
            self.word(u64::from_le_bytes(le));
        }
    }

    fn word(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(PRIME);
    }

    /// The value so far.
    pub fn value(&self) -> u64 {
        self.0
    }
}

impl Default for Checksum {
    fn default() -> Checksum {
        Checksum::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_change_changes_it() {
        let mut a = Checksum::new();
        a.update(&[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let mut b = Checksum::new();
        b.update(&[1, 2, 3, 4, 5, 6, 7, 8, 10]);
        assert_ne!(a.value(), b.value());
        let mut c = Checksum::new();
        c.update(&[1, 2, 3, 4, 5, 6, 7, 8]);
        c.update(&[9]);
        assert_eq!(a, c);
        assert_ne!(Checksum::new().value(), 0);
    }
}
