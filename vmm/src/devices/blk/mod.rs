//! A virtio-blk device on the virtio-mmio transport (version 2), backed by a raw disk
//! image on the host. The interface the guest sees is `virtio_seep::abi::blk`.
//!
//! - `transport`: the registers and the driver's initialization protocol;
//! - `request`: parsing, validating and carrying out one request;
//! - [`backend`]: the image file ([`DiskFile`]).
//!
//! The device lives in its domain ([`crate::Domain`] routes the MMIO exits of the
//! device window here). It has one request queue, driven through the shared validated
//! walker ([`crate::virtq`]), and no
//! interrupts: a `QUEUE_NOTIFY` write processes every available chain synchronously,
//! inside that exit, so when the guest's write instruction retires the used ring
//! already holds the completions. Every problem with what the guest wrote is a
//! [`DeviceFault`]; the device's state at a request boundary is kept with the domain's
//! checkpoints ([`BlkDevice::snapshot`]).

pub mod backend;
mod request;
mod transport;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use virtio_queue::{Queue, QueueState, QueueT};
use virtio_seep::abi::blk::{
    config, reg, BLK_MMIO_BASE, BLK_MMIO_SIZE, QUEUE_NUM_MAX, SECTOR_SIZE, SEG_MAX, SIZE_MAX,
};

pub use backend::{DiskError, DiskFile};

use crate::devices::DeviceFault;
use crate::memory::DomainMemory;
use crate::virtq::{self, RingConfig};
use request::{Operation, Request};
use transport::{Effect, QueueConfig, Registers};

/// Most descriptors in one request: header, `SEG_MAX` data segments, status.
const CHAIN_MAX: usize = SEG_MAX as usize + 2;

/// Bytes of config space the device answers reads in.
#[allow(clippy::cast_possible_truncation)] // 64
const CONFIG_BYTES: usize = config::SIZE as usize;

/// What the device did so far (for benchmarks and status).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkStats {
    /// `QUEUE_NOTIFY` writes (each one MMIO exit that processed the queue).
    pub notifies: u64,
    /// Requests completed (any status).
    pub requests: u64,
    /// Bytes read from the disk into the guest.
    pub bytes_read: u64,
    /// Bytes written from the guest to the disk.
    pub bytes_written: u64,
    /// Flush requests.
    pub flushes: u64,
}

/// The device's state at a point in time, to put it back after a rollback of the
/// domain's memory to the same point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlkSnapshot {
    registers: Registers,
    queue: Option<QueueState>,
}

/// A virtio-blk device of one domain.
#[derive(Debug)]
pub struct BlkDevice {
    disk: Arc<DiskFile>,
    registers: Registers,
    /// The request queue, once the driver made it ready.
    queue: Option<Queue>,
    stats: BlkStats,
}

impl BlkDevice {
    /// A device in its reset state over `disk`.
    pub fn new(disk: Arc<DiskFile>) -> BlkDevice {
        BlkDevice {
            disk,
            registers: Registers::default(),
            queue: None,
            stats: BlkStats::default(),
        }
    }

    /// Whether guest-physical address `gpa` is one of the device's registers.
    pub fn owns(gpa: u64) -> bool {
        gpa.checked_sub(BLK_MMIO_BASE)
            .is_some_and(|offset| offset < BLK_MMIO_SIZE)
    }

    /// What the device did so far.
    pub fn stats(&self) -> BlkStats {
        self.stats
    }

    /// A guest read of `data.len()` bytes at `gpa` (which [`owns`](Self::owns)):
    /// fills `data`.
    pub fn mmio_read(&mut self, gpa: u64, data: &mut [u8]) -> Result<(), DeviceFault> {
        let offset = gpa - BLK_MMIO_BASE;
        let len = data.len();
        if offset >= reg::CONFIG {
            let at = offset - reg::CONFIG;
            let aligned = matches!(len, 1 | 2 | 4 | 8) && at.is_multiple_of(len as u64);
            if !aligned || at + len as u64 > config::SIZE {
                return Err(bad_access(offset, len, false));
            }
            let at = usize::try_from(at).expect("inside the config space");
            data.copy_from_slice(&self.config_space()[at..at + len]);
            return Ok(());
        }
        if len != 4 || !offset.is_multiple_of(4) {
            return Err(bad_access(offset, len, false));
        }
        data.copy_from_slice(&self.registers.read(offset)?.to_le_bytes());
        Ok(())
    }

    /// A guest write of `data` at `gpa` (which [`owns`](Self::owns)); a queue notify
    /// processes the queue before this returns.
    pub fn mmio_write(
        &mut self,
        memory: &DomainMemory,
        gpa: u64,
        data: &[u8],
    ) -> Result<(), DeviceFault> {
        let offset = gpa - BLK_MMIO_BASE;
        let Ok(bytes) = <[u8; 4]>::try_from(data) else {
            return Err(bad_access(offset, data.len(), true));
        };
        if !offset.is_multiple_of(4) || offset >= reg::CONFIG {
            return Err(bad_access(offset, 4, true));
        }
        match self.registers.write(offset, u32::from_le_bytes(bytes))? {
            Effect::None => Ok(()),
            Effect::Reset | Effect::QueueDisabled => {
                self.queue = None;
                Ok(())
            }
            Effect::QueueReady(config) => {
                let queue = device_queue(memory, config);
                if queue.is_err() {
                    self.registers.clear_queue_ready();
                }
                self.queue = Some(queue?);
                Ok(())
            }
            Effect::Notify => self.process(memory),
        }
    }

    /// The device's state now.
    pub fn snapshot(&self) -> BlkSnapshot {
        BlkSnapshot {
            registers: self.registers.clone(),
            queue: self.queue.as_ref().map(Queue::state),
        }
    }

    /// Puts the device back in the state `snapshot` recorded.
    pub fn restore(&mut self, snapshot: &BlkSnapshot) {
        self.registers = snapshot.registers.clone();
        // The state was taken from a queue the device validated: rebuilding it cannot
        // fail.
        self.queue = snapshot
            .queue
            .map(|state| Queue::try_from(state).expect("a state of a valid queue"));
    }

    /// The config space (virtio 1.x, 5.2.4): capacity, size and segment limits, block
    /// size; every other field 0.
    fn config_space(&self) -> [u8; CONFIG_BYTES] {
        let mut space = [0u8; CONFIG_BYTES];
        let mut put = |at: u64, bytes: &[u8]| {
            let at = usize::try_from(at).expect("small");
            space[at..at + bytes.len()].copy_from_slice(bytes);
        };
        put(config::CAPACITY, &self.disk.sectors().to_le_bytes());
        put(config::SIZE_MAX, &SIZE_MAX.to_le_bytes());
        put(config::SEG_MAX, &SEG_MAX.to_le_bytes());
        let block = u32::try_from(SECTOR_SIZE).expect("512");
        put(config::BLK_SIZE, &block.to_le_bytes());
        space
    }

    /// Processes the available chains, in order, at most one queue's worth (so a guest
    /// that rewrites its own avail ring through a read cannot keep the VMM here). The
    /// first malformed chain is a fault; nothing after it is looked at.
    fn process(&mut self, memory: &DomainMemory) -> Result<(), DeviceFault> {
        let Some(queue) = self.queue.as_mut() else {
            return Err(DeviceFault::Protocol("notify of a queue that is not ready"));
        };
        self.stats.notifies += 1;
        for _ in 0..queue.size() {
            let Some((head, descriptors)) =
                virtq::pop_chain(queue, memory, CHAIN_MAX).map_err(DeviceFault::Queue)?
            else {
                break;
            };
            let request = Request::parse(memory, &descriptors, self.disk.sectors())?;
            let done = request.execute(memory, &self.disk);
            virtq::complete(queue, memory, head, done.written).map_err(DeviceFault::Queue)?;
            let stats = &mut self.stats;
            stats.requests += 1;
            match request.operation {
                Operation::Read { .. } => stats.bytes_read += done.bytes,
                Operation::Write { .. } => stats.bytes_written += done.bytes,
                Operation::Flush => stats.flushes += 1,
                Operation::GetId | Operation::Unsupported => {}
            }
        }
        Ok(())
    }
}

/// Builds the device side of the request queue after checking the driver's
/// configuration (see [`virtq::device_queue`]).
fn device_queue(memory: &DomainMemory, config: QueueConfig) -> Result<Queue, DeviceFault> {
    let ring = RingConfig {
        size: config.size,
        desc: config.desc,
        avail: config.driver,
        used: config.device,
    };
    virtq::device_queue(memory, ring, QUEUE_NUM_MAX).map_err(DeviceFault::Queue)
}

fn bad_access(offset: u64, len: usize, write: bool) -> DeviceFault {
    DeviceFault::BadRegisterAccess { offset, len, write }
}
