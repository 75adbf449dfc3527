//! Memory accounting calls (MM). MM accounts for app memory against per-process
//! limits and a system budget; the memory itself is the app's own RAM.

use ankh_proto::mm::Brk;
pub use ankh_proto::mm::{Region, Usage};
use ankh_proto::opcode::{MM_BRK, MM_MAP, MM_UNMAP, MM_USAGE};
use ankh_proto::Errno;
use zerocopy::IntoBytes;

use crate::{Channel, Os, Server};

impl<C: Channel> Os<C> {
    /// Sets the heap size to `size` bytes; returns the resulting size (`ENOMEM` over the
    /// process limit or the system budget).
    pub fn brk(&mut self, size: u64) -> Result<u64, Errno> {
        let request = Brk { size };
        let done: Brk = self.request_record(Server::Mm, MM_BRK, request.as_bytes(), &[])?;
        Ok(done.size)
    }

    /// Maps a region of `len` bytes (rounded up to pages); returns it.
    pub fn map(&mut self, len: u64) -> Result<Region, Errno> {
        let request = Region { addr: 0, len };
        self.request_record(Server::Mm, MM_MAP, request.as_bytes(), &[])
    }

    /// Unmaps `region`.
    pub fn unmap(&mut self, region: Region) -> Result<(), Errno> {
        self.request_unit(Server::Mm, MM_UNMAP, region.as_bytes(), &[])
    }

    /// This process's and the system's memory use.
    pub fn usage(&mut self) -> Result<Usage, Errno> {
        self.request_record(Server::Mm, MM_USAGE, &[], &[])
    }
}
