//! The block device as VFS reaches it: the `blk` driver domain, called through the
//! kernel of the request in hand ([`BlkClient`]), or no device at all ([`NoDevice`]).
//!
//! Driver recovery is transparent here (MINIX 3 style): every block request is
//! idempotent, so when the driver was restarted under a call (`ERESTART`) or died
//! before answering (`EDEADSRCDST`), the call is simply issued again, up to
//! [`REISSUE_MAX`] times, and the file system above never sees the crash.

use ankh_ext2::{BlockDevice, BLOCK_SIZE};
use ankh_proto::blk::{Geometry, Range, IO_MAX, SECTOR_SIZE};
use ankh_proto::errno::{self, Errno};
use ankh_proto::opcode::{BLK_FLUSH, BLK_INFO, BLK_READ, BLK_WRITE};
use ankh_proto::server::{Endpoint, Kernel, Reply};
use ankh_proto::wire;

/// Most times one block request is issued again after the driver crashed under it (the
/// shared bound, see `RESTART_RETRIES`).
pub const REISSUE_MAX: u32 = ankh_proto::server::RESTART_RETRIES;

/// Sectors per file-system block.
const SECTORS_PER_BLOCK: u64 = (BLOCK_SIZE / SECTOR_SIZE) as u64;

/// The `blk` driver, through `kernel`.
pub struct BlkClient<'k> {
    kernel: &'k mut dyn Kernel,
    blocks: u64,
}

impl<'k> BlkClient<'k> {
    /// The driver of a device of `blocks` file-system blocks.
    pub fn new(kernel: &'k mut dyn Kernel, blocks: u64) -> BlkClient<'k> {
        BlkClient { kernel, blocks }
    }

    /// Asks the driver for the device's size in file-system blocks.
    pub fn geometry(kernel: &mut dyn Kernel) -> Result<u64, Errno> {
        let reply = call(kernel, BLK_INFO, &[], &[])?;
        let geometry: Geometry = wire::record(&reply.payload)?;
        if geometry.sector_size as usize != SECTOR_SIZE {
            return Err(errno::EIO);
        }
        Ok(geometry.sectors / SECTORS_PER_BLOCK)
    }

    /// `block` and `len` bytes from it as a sector range (`EINVAL` past the end).
    fn range(&self, block: u64, len: usize) -> Result<Range, Errno> {
        let blocks = (len / BLOCK_SIZE) as u64;
        if !len.is_multiple_of(BLOCK_SIZE)
            || block
                .checked_add(blocks)
                .is_none_or(|end| end > self.blocks)
        {
            return Err(errno::EINVAL);
        }
        Ok(Range {
            sector: block * SECTORS_PER_BLOCK,
            count: u32::try_from(blocks * SECTORS_PER_BLOCK).map_err(|_| errno::EINVAL)?,
            reserved: 0,
        })
    }
}

/// One call to the driver, issued again while the driver crashes under it.
fn call(kernel: &mut dyn Kernel, opcode: u16, payload: &[u8], bulk: &[u8]) -> Result<Reply, Errno> {
    let mut attempts = 0;
    loop {
        let status = match kernel.call(Endpoint::Blk, opcode, payload, bulk) {
            Ok(reply) if reply.status == errno::OK => return Ok(reply),
            Ok(reply) => reply.status,
            Err(status) => status,
        };
        let driver_crashed = status == errno::ERESTART || status == errno::EDEADSRCDST;
        if !driver_crashed || attempts == REISSUE_MAX {
            return Err(if driver_crashed { errno::EIO } else { status });
        }
        attempts += 1;
    }
}

impl BlockDevice for BlkClient<'_> {
    fn blocks(&self) -> u64 {
        self.blocks
    }

    fn read_blocks(&mut self, block: u64, buf: &mut [u8]) -> Result<(), Errno> {
        for (index, chunk) in buf.chunks_mut(IO_MAX).enumerate() {
            let at = block + (index * IO_MAX / BLOCK_SIZE) as u64;
            let range = self.range(at, chunk.len())?;
            let reply = call(self.kernel, BLK_READ, &wire::bytes(&range), &[])?;
            if reply.bulk.len() != chunk.len() {
                return Err(errno::EIO);
            }
            chunk.copy_from_slice(&reply.bulk);
        }
        Ok(())
    }

    fn write_blocks(&mut self, block: u64, data: &[u8]) -> Result<(), Errno> {
        for (index, chunk) in data.chunks(IO_MAX).enumerate() {
            let at = block + (index * IO_MAX / BLOCK_SIZE) as u64;
            let range = self.range(at, chunk.len())?;
            call(self.kernel, BLK_WRITE, &wire::bytes(&range), chunk)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Errno> {
        call(self.kernel, BLK_FLUSH, &[], &[]).map(|_| ())
    }
}

/// No device: every access fails with `EIO` (the in-memory file system never asks).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoDevice;

impl BlockDevice for NoDevice {
    fn blocks(&self) -> u64 {
        0
    }

    fn read_blocks(&mut self, _block: u64, _buf: &mut [u8]) -> Result<(), Errno> {
        Err(errno::EIO)
    }

    fn write_blocks(&mut self, _block: u64, _data: &[u8]) -> Result<(), Errno> {
        Err(errno::EIO)
    }

    fn flush(&mut self) -> Result<(), Errno> {
        Err(errno::EIO)
    }
}
