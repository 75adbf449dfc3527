//! [`BlkServer`]: the `blk` domain's answers to `BLK_INFO`, `BLK_READ`, `BLK_WRITE`
//! and `BLK_FLUSH` (protocol: `ankh_proto::blk`), over any [`Disk`].
//!
//! Every request is checked before the disk sees it: a range must be 1 to
//! `SECTORS_MAX` sectors that all lie on the disk (reserved field zero), a read carries
//! no bulk data, a write exactly `count * 512` bytes of it; anything else is `EINVAL`.
//! A failure of the device is `EIO`; an unknown opcode `ENOSYS`.

use alloc::vec;
use alloc::vec::Vec;

use ankh_proto::blk::{Geometry, Range, SECTORS_MAX, SECTOR_SIZE};
use ankh_proto::errno::{EINVAL, EIO, ENOSYS};
use ankh_proto::opcode::{BLK_FLUSH, BLK_INFO, BLK_READ, BLK_WRITE};
use ankh_proto::server::{Handled, Kernel, Reply, Request, Server};
use ankh_proto::{wire, Errno};

use crate::driver::{BlkDriver, IoError};
use crate::transport::Transport;

/// A disk the server serves: sectors of [`SECTOR_SIZE`] bytes.
pub trait Disk {
    /// Sectors on the disk.
    fn sectors(&self) -> u64;
    /// Reads `buf.len()` bytes (whole sectors) from `sector` on.
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError>;
    /// Writes `buf` (whole sectors) from `sector` on.
    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError>;
    /// Makes every completed write durable.
    fn flush(&mut self) -> Result<(), IoError>;
}

impl<T: Transport> Disk for BlkDriver<T> {
    fn sectors(&self) -> u64 {
        self.geometry().sectors
    }

    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        BlkDriver::read(self, sector, buf)
    }

    fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        BlkDriver::write(self, sector, buf)
    }

    fn flush(&mut self) -> Result<(), IoError> {
        BlkDriver::flush(self)
    }
}

/// The block server.
#[derive(Debug)]
pub struct BlkServer<D: Disk> {
    disk: D,
}

impl<D: Disk> BlkServer<D> {
    /// Serves `disk`.
    pub fn new(disk: D) -> BlkServer<D> {
        BlkServer { disk }
    }

    /// The disk (for tests).
    pub fn disk(&self) -> &D {
        &self.disk
    }

    /// The range of a read or write: sectors on the disk, and its length in bytes.
    fn range(&self, request: &Request<'_>) -> Result<(u64, usize), Errno> {
        let range: Range = wire::record(request.payload)?;
        let end = range.sector.checked_add(u64::from(range.count));
        let valid = range.reserved == 0
            && (1..=SECTORS_MAX).contains(&range.count)
            && end.is_some_and(|end| end <= self.disk.sectors());
        if !valid {
            return Err(EINVAL);
        }
        let len = usize::try_from(range.count).map_err(|_| EINVAL)? * SECTOR_SIZE;
        Ok((range.sector, len))
    }

    fn read(&mut self, request: &Request<'_>) -> Result<Reply, Errno> {
        let (sector, len) = self.range(request)?;
        if !request.bulk.is_empty() {
            return Err(EINVAL);
        }
        let mut data = vec![0u8; len];
        self.disk.read(sector, &mut data).map_err(errno)?;
        Ok(Reply::ok_with_bulk(Vec::new(), data))
    }

    fn write(&mut self, request: &Request<'_>) -> Result<Reply, Errno> {
        let (sector, len) = self.range(request)?;
        if request.bulk.len() != len {
            return Err(EINVAL);
        }
        self.disk.write(sector, request.bulk).map_err(errno)?;
        Ok(Reply::default())
    }

    fn info(&self) -> Reply {
        let geometry = Geometry {
            sectors: self.disk.sectors(),
            sector_size: u32::try_from(SECTOR_SIZE).expect("512"),
            read_only: 0,
        };
        Reply::ok(wire::bytes(&geometry))
    }
}

impl<D: Disk> Server for BlkServer<D> {
    fn handle(&mut self, request: &Request<'_>, _kernel: &mut dyn Kernel) -> Handled {
        match request.opcode {
            BLK_INFO => self.info().into(),
            BLK_READ => self.read(request).into(),
            BLK_WRITE => self.write(request).into(),
            BLK_FLUSH => self
                .disk
                .flush()
                .map(|()| Reply::default())
                .map_err(errno)
                .into(),
            _ => Reply::err(ENOSYS).into(),
        }
    }
}

/// The errno of a disk failure: the server checked ranges and lengths itself, so
/// anything the disk refuses is an I/O error of the device.
fn errno(error: IoError) -> Errno {
    match error {
        IoError::OutOfRange | IoError::BadLength => EINVAL,
        IoError::Device | IoError::Unsupported | IoError::BadCompletion(_) => EIO,
    }
}
