//! The shape of the storage benchmark's workloads (`disk-bench` in the guest, and the
//! host baseline of `ankh bench storage`), defined once so both run the same pattern.

/// The file's size: 16 MiB.
pub const FILE_SIZE: usize = 16 << 20;
/// Bytes per sequential call.
pub const SEQ_CHUNK: usize = 1 << 20;
/// Bytes per random call.
pub const RANDOM_CHUNK: usize = 4096;
/// Random calls per random workload.
pub const RANDOM_OPS: u64 = 2048;
/// Bytes each random workload moves.
pub const RANDOM_BYTES: usize = 2048 * RANDOM_CHUNK;

const _: () = assert!(RANDOM_BYTES as u64 == RANDOM_OPS * RANDOM_CHUNK as u64);

/// The `i`-th random offset: a fixed LCG sequence, block aligned, inside the file.
pub fn random_offset(i: u64) -> u64 {
    let mixed = i
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    let blocks = (FILE_SIZE / RANDOM_CHUNK) as u64;
    ((mixed >> 33) % blocks) * RANDOM_CHUNK as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_aligned_and_inside_the_file() {
        for i in 0..RANDOM_OPS {
            let at = random_offset(i);
            assert_eq!(at % RANDOM_CHUNK as u64, 0);
            assert!(at + RANDOM_CHUNK as u64 <= FILE_SIZE as u64);
        }
    }
}
