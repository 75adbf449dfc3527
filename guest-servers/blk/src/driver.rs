//! The virtio-blk driver: the virtio-mmio initialization handshake, then reads, writes
//! and flushes, each split into as few requests as the device's limits allow, every
//! batch of requests posted with one notify and completed by polling the used ring.
//!
//! Buffers are handed to the device where they are (guest memory is identity-mapped, so
//! a slice is one physically contiguous range): a 1 MiB read on the VMM's device (one
//! segment of up to 1 MiB, `SIZE_MAX`) is one request of three descriptors and one
//! MMIO exit, and no bytes are copied in the guest.
//!
//! The driver checks what the device says too: its identity and version, the
//! geometry in its config space, and every completion (a known chain, completed once,
//! with the length and status a correct device reports). A device that breaks these
//! rules makes every later request fail (`IoError::BadCompletion`).

use virtio_seep::abi::blk::{
    config, reg, RequestHeader, DEVICE_ID_BLOCK, F_BLK_SIZE, F_FLUSH, F_SEG_MAX, F_SIZE_MAX,
    F_VERSION_1, MAGIC, SECTOR_SIZE, STATUS_ACKNOWLEDGE, STATUS_DRIVER, STATUS_DRIVER_OK,
    STATUS_FAILED, STATUS_FEATURES_OK, S_IOERR, S_OK, S_UNSUPP, T_FLUSH, T_IN, T_OUT, VERSION,
};

use crate::ring::{Descriptor, QueueMemory, Ring, DESC_F_NEXT, DESC_F_WRITE, QUEUE_SIZE};
use crate::transport::Transport;
use virtio_seep::queue::RingAddresses;

/// [`SECTOR_SIZE`] as a `usize` (and a `u32`).
#[allow(clippy::cast_possible_truncation)] // 512
const SECTOR: usize = SECTOR_SIZE as usize;
#[allow(clippy::cast_possible_truncation)] // 512
const SECTOR_U32: u32 = SECTOR_SIZE as u32;
/// Largest segment the driver makes when the device sets no limit.
const SEGMENT_DEFAULT: u32 = 1 << 20;
/// Status byte value the device never writes: "not completed".
const STATUS_PENDING: u8 = 0xff;
/// Polls of the used ring before a batch counts as lost (the VMM's device completes
/// every request inside the notify, so the first poll finds it).
const POLL_LIMIT: u32 = 1 << 20;
/// Reads of the config space before it counts as unstable.
const CONFIG_TRIES: u32 = 4;

/// Why the device could not be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// The magic value is not "virt".
    NotVirtio(u32),
    /// Not the modern (version 2) virtio-mmio layout.
    Version(u32),
    /// Not a block device.
    NotBlock(u32),
    /// The device does not offer `VIRTIO_F_VERSION_1`.
    NoVersion1,
    /// The device refused the driver's features.
    FeaturesRefused,
    /// The device has no request queue.
    NoQueue,
    /// The config space describes no usable disk.
    BadGeometry(&'static str),
}

impl InitError {
    /// A one-line description, for the console.
    pub fn text(&self) -> &'static str {
        match self {
            InitError::NotVirtio(_) => "no virtio device in the window",
            InitError::Version(_) => "not a virtio-mmio version 2 device",
            InitError::NotBlock(_) => "not a block device",
            InitError::NoVersion1 => "device does not offer VIRTIO_F_VERSION_1",
            InitError::FeaturesRefused => "device refused the features",
            InitError::NoQueue => "device has no request queue",
            InitError::BadGeometry(what) => what,
        }
    }
}

/// Why a read, write or flush failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoError {
    /// Sectors past the end of the disk.
    OutOfRange,
    /// A buffer that is empty or not whole sectors.
    BadLength,
    /// The device failed the request (`S_IOERR`).
    Device,
    /// The device does not support the request (`S_UNSUPP`).
    Unsupported,
    /// The device broke the virtio rules (an unknown or repeated completion, a wrong
    /// length or status, no completion): the driver no longer trusts it.
    BadCompletion(&'static str),
}

/// What the device offers, as the driver uses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Sectors on the disk.
    pub sectors: u64,
    /// Most bytes of one data segment (whole sectors).
    pub segment_max: u32,
    /// Most data segments of one request.
    pub segments_per_request: u16,
    /// Whether writes need a flush to be durable (`VIRTIO_BLK_F_FLUSH`).
    pub flush: bool,
    /// Entries of the request queue.
    pub queue_size: u16,
}

/// What the driver did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Requests completed.
    pub requests: u64,
    /// Notifies (MMIO exits that made the device work).
    pub notifies: u64,
}

/// A virtio-blk device, driven.
#[derive(Debug)]
pub struct BlkDriver<T: Transport> {
    transport: T,
    ring: Ring,
    geometry: Geometry,
    stats: DriverStats,
    /// Set when the device broke the rules: every request fails from then on.
    broken: Option<&'static str>,
}

impl<T: Transport> BlkDriver<T> {
    /// Resets the device behind `transport`, negotiates features, reads the geometry
    /// and sets the request queue up in `memory`.
    pub fn init(mut transport: T, memory: &'static mut QueueMemory) -> Result<Self, InitError> {
        let magic = transport.read(reg::MAGIC_VALUE);
        if magic != MAGIC {
            return Err(InitError::NotVirtio(magic));
        }
        let version = transport.read(reg::VERSION);
        if version != VERSION {
            return Err(InitError::Version(version));
        }
        let id = transport.read(reg::DEVICE_ID);
        if id != DEVICE_ID_BLOCK {
            return Err(InitError::NotBlock(id));
        }
        let mut status = 0;
        let mut set = |transport: &mut T, bits: u32| {
            status |= bits;
            // SAFETY: a status write makes the device touch no memory.
            unsafe { transport.write(reg::STATUS, if bits == 0 { 0 } else { status }) };
        };
        set(&mut transport, 0);
        set(&mut transport, STATUS_ACKNOWLEDGE);
        set(&mut transport, STATUS_DRIVER);
        let result = negotiate(&mut transport, &mut set).and_then(|features| {
            let geometry = read_geometry(&mut transport, features)?;
            setup_queue(&mut transport, memory, geometry)
        });
        let (ring, geometry) = match result {
            Ok(done) => done,
            Err(error) => {
                set(&mut transport, STATUS_FAILED);
                return Err(error);
            }
        };
        set(&mut transport, STATUS_DRIVER_OK);
        Ok(BlkDriver {
            transport,
            ring,
            geometry,
            stats: DriverStats::default(),
            broken: None,
        })
    }

    /// What the device offers.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// What the driver did so far.
    pub fn stats(&self) -> DriverStats {
        self.stats
    }

    /// The transport (tests look at their fake device through it).
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Reads `buf.len()` bytes (whole sectors) from `sector` on.
    pub fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), IoError> {
        self.transfer(T_IN, sector, buf.as_mut_ptr() as u64, buf.len())
    }

    /// Writes `buf` (whole sectors) from `sector` on.
    pub fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), IoError> {
        self.transfer(T_OUT, sector, buf.as_ptr() as u64, buf.len())
    }

    /// Makes every completed write durable (nothing to do on a device without
    /// `VIRTIO_BLK_F_FLUSH`, which completes writes only once they are).
    pub fn flush(&mut self) -> Result<(), IoError> {
        if !self.geometry.flush {
            return Ok(());
        }
        self.check_trusted()?;
        let header = RequestHeader {
            kind: T_FLUSH,
            ..RequestHeader::default()
        };
        let mut expected = [None; QUEUE_SIZE as usize];
        self.post(0, header, &[], false, &mut expected);
        self.complete(&mut expected)
    }

    /// Raw access to the queue and registers, for the image that feeds the device
    /// malformed requests on purpose (`blk-bad`).
    pub fn raw(&mut self) -> Raw<'_, T> {
        Raw { driver: self }
    }

    /// Moves `len` bytes at guest address `addr` to or from the disk at `sector`.
    fn transfer(&mut self, kind: u32, sector: u64, addr: u64, len: usize) -> Result<(), IoError> {
        self.check_trusted()?;
        if len == 0 || !len.is_multiple_of(SECTOR) {
            return Err(IoError::BadLength);
        }
        let count = (len / SECTOR) as u64;
        if sector
            .checked_add(count)
            .is_none_or(|end| end > self.geometry.sectors)
        {
            return Err(IoError::OutOfRange);
        }
        let segment = self.geometry.segment_max as usize;
        let per_request = usize::from(self.geometry.segments_per_request);
        let size = usize::from(self.ring.size());
        let device_writes = kind == T_IN;
        let mut done = 0;
        while done < len {
            // One batch: as many requests as the free descriptors hold, one notify.
            let mut expected = [None; QUEUE_SIZE as usize];
            let mut next = 0;
            while done < len && next + 3 <= size {
                let room = per_request.min(size - next - 2);
                let mut segments = [(0u64, 0u32); QUEUE_SIZE as usize];
                let mut used = 0;
                let first = done;
                while done < len && used < room {
                    let n = segment.min(len - done);
                    segments[used] = (addr + done as u64, u32::try_from(n).unwrap_or(u32::MAX));
                    done += n;
                    used += 1;
                }
                let header = RequestHeader {
                    kind,
                    reserved: 0,
                    sector: sector + (first / SECTOR) as u64,
                };
                let head = u16::try_from(next).expect("below the queue size");
                self.post(
                    head,
                    header,
                    &segments[..used],
                    device_writes,
                    &mut expected,
                );
                next += used + 2;
            }
            self.complete(&mut expected)?;
        }
        Ok(())
    }

    /// Writes one request's chain at descriptors `head ..` and offers it; records in
    /// `expected` the length a correct device reports for it.
    fn post(
        &mut self,
        head: u16,
        header: RequestHeader,
        segments: &[(u64, u32)],
        device_writes: bool,
        expected: &mut [Option<u32>; QUEUE_SIZE as usize],
    ) {
        let ring = &mut self.ring;
        let header_addr = ring.set_header(head, header);
        ring.set_desc(
            head,
            Descriptor {
                addr: header_addr,
                len: 16,
                flags: DESC_F_NEXT,
                next: head + 1,
            },
        );
        let mut index = head + 1;
        let data_flags = DESC_F_NEXT | if device_writes { DESC_F_WRITE } else { 0 };
        let mut written = 1u32;
        for &(addr, len) in segments {
            ring.set_desc(
                index,
                Descriptor {
                    addr,
                    len,
                    flags: data_flags,
                    next: index + 1,
                },
            );
            if device_writes {
                written = written.saturating_add(len);
            }
            index += 1;
        }
        let status = ring.set_status(head, STATUS_PENDING);
        ring.set_desc(
            index,
            Descriptor {
                addr: status,
                len: 1,
                flags: DESC_F_WRITE,
                next: 0,
            },
        );
        expected[usize::from(head)] = Some(written);
        ring.publish(head);
    }

    /// Notifies the device and checks the completion of every request in `expected`.
    fn complete(
        &mut self,
        expected: &mut [Option<u32>; QUEUE_SIZE as usize],
    ) -> Result<(), IoError> {
        // SAFETY: the posted chains name the queue memory's headers and status bytes
        // and the caller's buffer (a `&mut [u8]` for device-written data, which the
        // caller does not touch during this call; a `&[u8]` the device only reads).
        unsafe { self.transport.write(reg::QUEUE_NOTIFY, 0) };
        self.stats.notifies += 1;
        let mut outcome = Ok(());
        let mut polls = 0;
        while expected.iter().any(Option::is_some) {
            let Some(used) = self.ring.pop_used() else {
                polls += 1;
                if polls > POLL_LIMIT {
                    return Err(self.distrust("the device did not complete a request"));
                }
                continue;
            };
            let slot = usize::try_from(used.id)
                .ok()
                .filter(|&s| s < expected.len());
            let Some(want) = slot.and_then(|slot| expected[slot].take()) else {
                return Err(self.distrust("the device completed a chain it was not given"));
            };
            if used.len != want {
                return Err(self.distrust("the device reported a wrong length"));
            }
            let head = u16::try_from(used.id).expect("checked above");
            let status = match self.ring.status(head) {
                S_OK => Ok(()),
                S_IOERR => Err(IoError::Device),
                S_UNSUPP => Err(IoError::Unsupported),
                _ => return Err(self.distrust("the device wrote a bad status")),
            };
            self.stats.requests += 1;
            outcome = outcome.and(status);
        }
        if self.ring.unseen_used() != 0 {
            return Err(self.distrust("the device completed more than it was given"));
        }
        outcome
    }

    fn check_trusted(&self) -> Result<(), IoError> {
        match self.broken {
            Some(why) => Err(IoError::BadCompletion(why)),
            None => Ok(()),
        }
    }

    fn distrust(&mut self, why: &'static str) -> IoError {
        self.broken = Some(why);
        IoError::BadCompletion(why)
    }
}

/// Raw access to a driver's queue and device (see [`BlkDriver::raw`]).
#[derive(Debug)]
pub struct Raw<'a, T: Transport> {
    driver: &'a mut BlkDriver<T>,
}

impl<T: Transport> Raw<'_, T> {
    /// The queue.
    pub fn ring(&mut self) -> &mut Ring {
        &mut self.driver.ring
    }

    /// Writes a register.
    ///
    /// # Safety
    ///
    /// As [`Transport::write`]: for a notify, every posted chain must name memory the
    /// device may access.
    pub unsafe fn write(&mut self, offset: u64, value: u32) {
        // SAFETY: the caller's contract.
        unsafe { self.driver.transport.write(offset, value) };
    }

    /// Reads a register.
    pub fn read(&mut self, offset: u64) -> u32 {
        self.driver.transport.read(offset)
    }
}

/// Feature negotiation: takes what the driver uses of what the device offers.
fn negotiate<T: Transport>(
    transport: &mut T,
    set: &mut impl FnMut(&mut T, u32),
) -> Result<u64, InitError> {
    let mut offered = 0u64;
    for word in 0..2u32 {
        // SAFETY: selector writes make the device touch no memory.
        unsafe { transport.write(reg::DEVICE_FEATURES_SEL, word) };
        offered |= u64::from(transport.read(reg::DEVICE_FEATURES)) << (32 * word);
    }
    if offered & (1 << F_VERSION_1) == 0 {
        return Err(InitError::NoVersion1);
    }
    let wanted = (1 << F_VERSION_1)
        | offered & ((1 << F_FLUSH) | (1 << F_SIZE_MAX) | (1 << F_SEG_MAX) | (1 << F_BLK_SIZE));
    for word in 0..2u32 {
        let bits = u32::try_from((wanted >> (32 * word)) & 0xffff_ffff).expect("masked");
        // SAFETY: feature writes make the device touch no memory.
        unsafe {
            transport.write(reg::DRIVER_FEATURES_SEL, word);
            transport.write(reg::DRIVER_FEATURES, bits);
        }
    }
    set(transport, STATUS_FEATURES_OK);
    if transport.read(reg::STATUS) & STATUS_FEATURES_OK == 0 {
        return Err(InitError::FeaturesRefused);
    }
    Ok(wanted)
}

/// Reads and checks the config space (retrying while its generation changes).
fn read_geometry<T: Transport>(transport: &mut T, features: u64) -> Result<Geometry, InitError> {
    let has = |bit: u32| features & (1 << bit) != 0;
    for _ in 0..CONFIG_TRIES {
        let generation = transport.read(reg::CONFIG_GENERATION);
        let mut word = |at: u64| transport.read(reg::CONFIG + at);
        let sectors =
            u64::from(word(config::CAPACITY)) | u64::from(word(config::CAPACITY + 4)) << 32;
        let size_max = has(F_SIZE_MAX).then(|| word(config::SIZE_MAX));
        let seg_max = has(F_SEG_MAX).then(|| word(config::SEG_MAX));
        let blk_size = has(F_BLK_SIZE).then(|| word(config::BLK_SIZE));
        if transport.read(reg::CONFIG_GENERATION) != generation {
            continue;
        }
        if sectors == 0 {
            return Err(InitError::BadGeometry("the disk has no sectors"));
        }
        let segment_max = match size_max {
            Some(max) if max < SECTOR_U32 => {
                return Err(InitError::BadGeometry("size_max is below one sector"))
            }
            Some(max) => max - max % SECTOR_U32,
            None => SEGMENT_DEFAULT,
        };
        let segments = match seg_max {
            Some(0) => return Err(InitError::BadGeometry("seg_max is 0")),
            Some(max) => u16::try_from(max).unwrap_or(u16::MAX),
            None => u16::MAX,
        };
        if blk_size.is_some_and(|size| size < SECTOR_U32 || !size.is_power_of_two()) {
            return Err(InitError::BadGeometry("bad block size"));
        }
        return Ok(Geometry {
            sectors,
            segment_max,
            segments_per_request: segments,
            flush: has(F_FLUSH),
            queue_size: 0,
        });
    }
    Err(InitError::BadGeometry("the config space keeps changing"))
}

/// Sets queue 0 up in `memory`: the largest power of two the device and the driver
/// both allow, at least room for one request.
fn setup_queue<T: Transport>(
    transport: &mut T,
    memory: &'static mut QueueMemory,
    geometry: Geometry,
) -> Result<(Ring, Geometry), InitError> {
    // SAFETY: selector writes make the device touch no memory.
    unsafe { transport.write(reg::QUEUE_SEL, 0) };
    let max = transport.read(reg::QUEUE_NUM_MAX);
    if max == 0 {
        return Err(InitError::NoQueue);
    }
    let limit = max.min(u32::from(QUEUE_SIZE));
    let size = 1u16 << (31 - limit.leading_zeros());
    if size < 4 {
        return Err(InitError::BadGeometry("the request queue is too small"));
    }
    let ring = Ring::new(memory, size);
    let RingAddresses {
        desc, avail, used, ..
    } = ring.addresses();
    // SAFETY: queue configuration writes make the device touch no memory; from
    // QUEUE_READY on, the device may use the rings, which `ring` reserves for it.
    unsafe {
        transport.write(reg::QUEUE_NUM, u32::from(size));
        for (low, addr) in [
            (reg::QUEUE_DESC_LOW, desc),
            (reg::QUEUE_DRIVER_LOW, avail),
            (reg::QUEUE_DEVICE_LOW, used),
        ] {
            transport.write(low, (addr & 0xffff_ffff) as u32);
            transport.write(low + 4, (addr >> 32) as u32);
        }
        transport.write(reg::QUEUE_READY, 1);
    }
    let segments = geometry.segments_per_request.min(size - 2);
    Ok((
        ring,
        Geometry {
            segments_per_request: segments,
            queue_size: size,
            ..geometry
        },
    ))
}
