//! Block I/O in runs: consecutive blocks move in one device call of at most
//! [`RUN_MAX_BLOCKS`] (1 MiB), because every call is a round trip to the driver.

use alloc::vec::Vec;

use ankh_proto::errno::Errno;

use crate::device::{BlockDevice, BLOCK_SIZE};

/// Most blocks one device call moves (1 MiB).
pub const RUN_MAX_BLOCKS: usize = 256;

/// Gathers block writes into runs: a block that follows the previous one joins its
/// run, anything else (or a full run) sends the run first.
pub struct RunWriter {
    start: u64,
    buffer: Vec<u8>,
    /// Device calls made (for tests and measurements).
    pub calls: u64,
}

impl RunWriter {
    /// A writer with nothing gathered.
    pub fn new() -> RunWriter {
        RunWriter {
            start: 0,
            buffer: Vec::new(),
            calls: 0,
        }
    }

    /// Blocks gathered and not yet written.
    fn gathered(&self) -> u64 {
        (self.buffer.len() / BLOCK_SIZE) as u64
    }

    /// Adds one block (`data` is one block long).
    pub fn push(
        &mut self,
        dev: &mut dyn BlockDevice,
        block: u64,
        data: &[u8],
    ) -> Result<(), Errno> {
        let follows = !self.buffer.is_empty() && self.start + self.gathered() == block;
        if !follows || self.buffer.len() >= RUN_MAX_BLOCKS * BLOCK_SIZE {
            self.finish(dev)?;
            self.start = block;
        }
        self.buffer.extend_from_slice(data);
        Ok(())
    }

    /// Writes what is gathered.
    pub fn finish(&mut self, dev: &mut dyn BlockDevice) -> Result<(), Errno> {
        if !self.buffer.is_empty() {
            self.calls += 1;
            dev.write_blocks(self.start, &self.buffer)?;
            self.buffer.clear();
        }
        Ok(())
    }
}

impl Default for RunWriter {
    fn default() -> RunWriter {
        RunWriter::new()
    }
}

/// Splits blocks (in the order given) into runs of consecutive numbers, each at most
/// [`RUN_MAX_BLOCKS`] long: `(index of the run's first block in blocks, length)`.
pub fn runs(blocks: &[u64]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (i, &block) in blocks.iter().enumerate() {
        match out.last_mut() {
            Some((first, len))
                if *len < RUN_MAX_BLOCKS && blocks[*first] + (*len as u64) == block =>
            {
                *len += 1;
            }
            _ => out.push((i, 1)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::MemDisk;
    use alloc::vec;

    #[test]
    fn consecutive_blocks_share_a_call() {
        let mut disk = MemDisk::new(600);
        let mut writer = RunWriter::new();
        for block in [3, 4, 5, 9, 10] {
            writer
                .push(
                    &mut disk,
                    block,
                    &vec![u8::try_from(block % 256).unwrap(); BLOCK_SIZE],
                )
                .unwrap();
        }
        for block in 100..400 {
            writer.push(&mut disk, block, &vec![1; BLOCK_SIZE]).unwrap();
        }
        writer.finish(&mut disk).unwrap();
        assert_eq!(writer.calls, 4);
        assert_eq!(disk.image()[5 * BLOCK_SIZE], 5);
        assert_eq!(disk.image()[10 * BLOCK_SIZE + 7], 10);
        assert_eq!(runs(&[1, 2, 3, 7, 8, 2]), [(0, 3), (3, 2), (5, 1)]);
    }
}
