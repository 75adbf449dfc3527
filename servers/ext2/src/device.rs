//! The block device the file system runs on, and an in-memory one for tests and for
//! building images.

use alloc::vec;
use alloc::vec::Vec;

use ankh_proto::errno::{self, Errno};

/// Bytes per file-system block.
pub const BLOCK_SIZE: usize = 4096;

/// A device of [`BLOCK_SIZE`] blocks. Every method answers `EIO` when the device
/// fails and `EINVAL` for blocks past its end. A write that returned is not yet
/// durable: only [`flush`](BlockDevice::flush) makes the writes before it durable.
pub trait BlockDevice {
    /// Blocks on the device.
    fn blocks(&self) -> u64;

    /// Reads `buf.len() / BLOCK_SIZE` consecutive blocks from `block` (`buf.len()` is a
    /// multiple of [`BLOCK_SIZE`]).
    fn read_blocks(&mut self, block: u64, buf: &mut [u8]) -> Result<(), Errno>;

    /// Writes `data.len() / BLOCK_SIZE` consecutive blocks from `block`.
    fn write_blocks(&mut self, block: u64, data: &[u8]) -> Result<(), Errno>;

    /// Makes every write before it durable.
    fn flush(&mut self) -> Result<(), Errno>;
}

/// A device in memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemDisk {
    data: Vec<u8>,
}

impl MemDisk {
    /// A zeroed device of `blocks` blocks.
    pub fn new(blocks: u64) -> MemDisk {
        let len = usize::try_from(blocks).unwrap_or(usize::MAX / BLOCK_SIZE) * BLOCK_SIZE;
        MemDisk { data: vec![0; len] }
    }

    /// A device holding `image` (its length rounded down to whole blocks).
    pub fn from_image(mut image: Vec<u8>) -> MemDisk {
        image.truncate(image.len() / BLOCK_SIZE * BLOCK_SIZE);
        MemDisk { data: image }
    }

    /// The device's bytes.
    pub fn image(&self) -> &[u8] {
        &self.data
    }

    /// The device's bytes, taken.
    pub fn into_image(self) -> Vec<u8> {
        self.data
    }

    /// The byte range of `len` bytes from `block`, if it is on the device and whole
    /// blocks long.
    fn span(&self, block: u64, len: usize) -> Result<core::ops::Range<usize>, Errno> {
        if len.next_multiple_of(BLOCK_SIZE) != len {
            return Err(errno::EINVAL);
        }
        let start = usize::try_from(block)
            .ok()
            .and_then(|b| b.checked_mul(BLOCK_SIZE))
            .ok_or(errno::EINVAL)?;
        let end = start.checked_add(len).ok_or(errno::EINVAL)?;
        if end > self.data.len() {
            return Err(errno::EINVAL);
        }
        Ok(start..end)
    }
}

impl BlockDevice for MemDisk {
    fn blocks(&self) -> u64 {
        (self.data.len() / BLOCK_SIZE) as u64
    }

    fn read_blocks(&mut self, block: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let span = self.span(block, buf.len())?;
        buf.copy_from_slice(&self.data[span]);
        Ok(())
    }

    fn write_blocks(&mut self, block: u64, data: &[u8]) -> Result<(), Errno> {
        let span = self.span(block, data.len())?;
        self.data[span].copy_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Errno> {
        Ok(())
    }
}
