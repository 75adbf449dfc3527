//! A fake virtio-blk device that plays the VMM's side: registers, config space, and a
//! queue processed synchronously at each notify over an in-memory disk, with knobs
//! for a bad geometry and for bad completions.

use core::ptr;

use virtio_seep::abi::blk::{
    reg, RequestHeader, DEVICE_FEATURES, DEVICE_ID_BLOCK, MAGIC, SECTOR_SIZE, STATUS_FEATURES_OK,
    S_IOERR, S_OK, T_FLUSH, T_IN, T_OUT, VERSION,
};

use crate::transport::Transport;

/// How the fake completes requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Completion {
    /// Like the VMM's device.
    #[default]
    Correct,
    /// Reports a head index it was not given.
    WrongId,
    /// Reports one byte less than it wrote.
    WrongLength,
    /// Writes a status byte virtio does not define.
    BadStatus,
    /// Completes nothing.
    Never,
    /// Adds a second used entry for the same chain.
    Twice,
    /// Fails every request with `S_IOERR`.
    IoError,
}

/// One request the fake processed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    pub kind: u32,
    pub sector: u64,
    pub bytes: usize,
    pub segments: usize,
}

/// The fake device.
#[derive(Debug)]
pub struct FakeDevice {
    pub disk: Vec<u8>,
    pub magic: u32,
    pub version: u32,
    pub device_id: u32,
    pub features: u64,
    pub refuse_features: bool,
    pub capacity: u64,
    pub size_max: u32,
    pub seg_max: u32,
    pub blk_size: u32,
    pub queue_num_max: u32,
    /// Config generation reads that return a new value (a changing config space).
    pub generation_changes: u32,
    pub completion: Completion,
    pub notifies: u32,
    pub seen: Vec<Seen>,
    status: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    pub driver_features: u64,
    queue: [u64; 3],
    queue_num: u32,
    ready: bool,
    next_avail: u16,
    next_used: u16,
    generation: u32,
}

impl FakeDevice {
    /// A device with `sectors` sectors of zeros, 1 MiB segments, 16 per request.
    pub fn new(sectors: u64) -> FakeDevice {
        FakeDevice {
            disk: vec![0; (sectors * SECTOR_SIZE) as usize],
            magic: MAGIC,
            version: VERSION,
            device_id: DEVICE_ID_BLOCK,
            features: DEVICE_FEATURES,
            refuse_features: false,
            capacity: sectors,
            size_max: 1 << 20,
            seg_max: 16,
            blk_size: 512,
            queue_num_max: 256,
            generation_changes: 0,
            completion: Completion::Correct,
            notifies: 0,
            seen: Vec::new(),
            status: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue: [0; 3],
            queue_num: 0,
            ready: false,
            next_avail: 0,
            next_used: 0,
            generation: 0,
        }
    }

    fn config(&self, at: u64) -> u32 {
        let word = |value: u64| (value & 0xffff_ffff) as u32;
        match at {
            0 => word(self.capacity),
            4 => word(self.capacity >> 32),
            8 => self.size_max,
            12 => self.seg_max,
            20 => self.blk_size,
            _ => 0,
        }
    }

    /// Processes every available chain, the way the VMM's device does.
    fn process(&mut self) {
        let [desc, avail, used] = self.queue;
        let size = self.queue_num as u16;
        let avail_idx: u16 = peek(avail + 2);
        while self.next_avail != avail_idx {
            let slot = u64::from(self.next_avail % size);
            let head: u16 = peek(avail + 4 + 2 * slot);
            self.next_avail = self.next_avail.wrapping_add(1);
            let mut chain = Vec::new();
            let mut index = head;
            loop {
                let entry = desc + 16 * u64::from(index);
                let addr: u64 = peek(entry);
                let len: u32 = peek(entry + 8);
                let flags: u16 = peek(entry + 12);
                let next: u16 = peek(entry + 14);
                chain.push((addr, len));
                if flags & 1 == 0 {
                    break;
                }
                index = next;
            }
            let header: RequestHeader = peek(chain[0].0);
            let data = &chain[1..chain.len() - 1];
            let status_addr = chain[chain.len() - 1].0;
            let mut at = (header.sector * SECTOR_SIZE) as usize;
            let mut written = 1u32;
            for &(addr, len) in data {
                let len = len as usize;
                match header.kind {
                    T_IN => {
                        copy(self.disk[at..at + len].as_ptr(), addr as *mut u8, len);
                        written += len as u32;
                    }
                    T_OUT => copy(addr as *const u8, self.disk[at..at + len].as_mut_ptr(), len),
                    _ => {}
                }
                at += len;
            }
            assert!(
                matches!(header.kind, T_IN | T_OUT | T_FLUSH),
                "the driver sent request type {}",
                header.kind
            );
            self.seen.push(Seen {
                kind: header.kind,
                sector: header.sector,
                bytes: data.iter().map(|d| d.1 as usize).sum(),
                segments: data.len(),
            });
            let status = match self.completion {
                Completion::BadStatus => 7,
                Completion::IoError => S_IOERR,
                _ => S_OK,
            };
            poke(status_addr, status);
            let (id, len) = match self.completion {
                Completion::WrongId => (u32::from(head) + 1, written),
                Completion::WrongLength => (u32::from(head), written - 1),
                _ => (u32::from(head), written),
            };
            let entries = match self.completion {
                Completion::Never => 0,
                Completion::Twice => 2,
                _ => 1,
            };
            for _ in 0..entries {
                let slot = u64::from(self.next_used % size);
                poke(used + 4 + 8 * slot, id);
                poke(used + 8 + 8 * slot, len);
                self.next_used = self.next_used.wrapping_add(1);
            }
            poke(used + 2, self.next_used);
        }
    }
}

// The fake reaches the driver's memory by address, as the VMM does. Every address it
// uses is one the driver under test configured or posted: its leaked queue memory and
// the buffers it lent for the notify in progress, valid and untouched by anything else
// during the call. The helpers are safe functions only because this module is the
// fake device of host tests.

/// Reads a `T` at `addr`.
fn peek<T: Copy>(addr: u64) -> T {
    // SAFETY: `addr` was posted by the driver under test (see above).
    unsafe { ptr::read_unaligned(addr as *const T) }
}

/// Writes `value` at `addr`.
fn poke<T: Copy>(addr: u64, value: T) {
    // SAFETY: `addr` was posted device-writable by the driver under test (see above).
    unsafe { ptr::write_unaligned(addr as *mut T, value) }
}

/// Copies `len` bytes between the disk and a posted buffer.
fn copy(from: *const u8, to: *mut u8, len: usize) {
    // SAFETY: one side is the fake's disk, the other a buffer of at least `len` bytes
    // posted by the driver under test (see above); they cannot overlap.
    unsafe { ptr::copy_nonoverlapping(from, to, len) }
}

// SAFETY: like the VMM's device, the fake touches the queue and the posted buffers only
// inside a notify, writes only the used ring, status bytes and device-writable data
// segments, and completes (or, on purpose, fails to report) every chain before
// returning.
unsafe impl Transport for FakeDevice {
    fn read(&mut self, offset: u64) -> u32 {
        match offset {
            reg::MAGIC_VALUE => self.magic,
            reg::VERSION => self.version,
            reg::DEVICE_ID => self.device_id,
            reg::DEVICE_FEATURES => match self.device_features_sel {
                0 => (self.features & 0xffff_ffff) as u32,
                1 => (self.features >> 32) as u32,
                _ => 0,
            },
            reg::QUEUE_NUM_MAX => self.queue_num_max,
            reg::STATUS => self.status,
            reg::CONFIG_GENERATION => {
                if self.generation_changes > 0 {
                    self.generation_changes -= 1;
                    self.generation += 1;
                }
                self.generation
            }
            at if at >= reg::CONFIG => self.config(at - reg::CONFIG),
            other => panic!("the driver read register {other:#x}"),
        }
    }

    unsafe fn write(&mut self, offset: u64, value: u32) {
        let low = |old: u64| (old & !0xffff_ffff) | u64::from(value);
        let high = |old: u64| (old & 0xffff_ffff) | (u64::from(value) << 32);
        match offset {
            reg::STATUS => {
                self.status = value;
                if self.refuse_features {
                    self.status &= !STATUS_FEATURES_OK;
                }
            }
            reg::DEVICE_FEATURES_SEL => self.device_features_sel = value,
            reg::DRIVER_FEATURES_SEL => self.driver_features_sel = value,
            reg::DRIVER_FEATURES => match self.driver_features_sel {
                0 => self.driver_features = low(self.driver_features),
                _ => self.driver_features = high(self.driver_features),
            },
            reg::QUEUE_SEL => assert_eq!(value, 0),
            reg::QUEUE_NUM => self.queue_num = value,
            reg::QUEUE_DESC_LOW => self.queue[0] = low(self.queue[0]),
            reg::QUEUE_DESC_HIGH => self.queue[0] = high(self.queue[0]),
            reg::QUEUE_DRIVER_LOW => self.queue[1] = low(self.queue[1]),
            reg::QUEUE_DRIVER_HIGH => self.queue[1] = high(self.queue[1]),
            reg::QUEUE_DEVICE_LOW => self.queue[2] = low(self.queue[2]),
            reg::QUEUE_DEVICE_HIGH => self.queue[2] = high(self.queue[2]),
            reg::QUEUE_READY => self.ready = value == 1,
            reg::QUEUE_NOTIFY => {
                assert!(self.ready, "notify before the queue is ready");
                self.notifies += 1;
                self.process();
            }
            other => panic!("the driver wrote register {other:#x}"),
        }
    }
}
