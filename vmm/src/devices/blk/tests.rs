//! The device against a fake driver that writes registers, rings and descriptors
//! straight into guest memory, including every kind of garbage, over a real image file.

// Fixture sizes, indexes and addresses are small constants.
#![allow(clippy::cast_possible_truncation)]

use std::sync::atomic::{AtomicU32, Ordering};

use virtio_seep::abi::blk::{
    DEVICE_FEATURES, F_FLUSH, F_VERSION_1, ID_BYTES, MAGIC, STATUS_ACKNOWLEDGE, STATUS_DRIVER,
    STATUS_DRIVER_OK, STATUS_FEATURES_OK, S_IOERR, S_OK, S_UNSUPP, T_FLUSH, T_GET_ID, T_IN, T_OUT,
};
use vm_memory::{Bytes, GuestAddress};

use super::*;
use crate::virtq::QueueFault;

/// Where the fixture's rings are.
pub(super) const RINGS: u64 = 0x10_0000;
/// Avail ring, inside the rings' page.
pub(super) const AVAIL: u64 = RINGS + 0x100;
/// Used ring.
pub(super) const USED: u64 = RINGS + 0x200;
/// Request headers (16 bytes each, one per descriptor slot).
pub(super) const HEADERS: u64 = 0x10_1000;
/// Status bytes (one per descriptor slot).
pub(super) const STATUSES: u64 = 0x10_2000;
/// Data buffers.
pub(super) const DATA: u64 = 0x11_0000;
/// Queue size of the fixture.
pub(super) const SIZE: u16 = 16;
/// Sectors of the fixture's disk.
pub(super) const SECTORS: u64 = 64;
/// Descriptor flags.
pub(super) const NEXT: u16 = 1;
pub(super) const WRITE: u16 = 2;
pub(super) const INDIRECT: u16 = 4;

/// A byte of the fixture disk's initial content.
pub(super) fn pattern(offset: usize) -> u8 {
    (offset.wrapping_mul(7) ^ (offset >> 9)) as u8
}

/// A temporary image file, removed on drop.
pub(super) struct TempImage {
    pub(super) path: std::path::PathBuf,
}

impl TempImage {
    pub(super) fn new(sectors: u64) -> TempImage {
        static NEXT_ID: AtomicU32 = AtomicU32::new(0);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("ankh-blk-unit-{}-{id}.img", std::process::id()));
        let bytes: Vec<u8> = (0..(sectors * SECTOR_SIZE) as usize).map(pattern).collect();
        std::fs::write(&path, bytes).unwrap();
        TempImage { path }
    }

    pub(super) fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.path).unwrap()
    }
}

impl Drop for TempImage {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A device, its domain's memory and a driver that pokes both.
pub(super) struct Fixture {
    pub(super) image: TempImage,
    pub(super) memory: DomainMemory,
    pub(super) device: BlkDevice,
    published: u16,
}

impl Fixture {
    /// A device after a full, correct handshake with a 16-entry queue at [`RINGS`].
    pub(super) fn ready() -> Fixture {
        let mut fixture = Fixture::reset();
        fixture.handshake(DEVICE_FEATURES);
        fixture.queue(u32::from(SIZE), RINGS, AVAIL, USED).unwrap();
        fixture.status(7 | STATUS_FEATURES_OK).unwrap();
        fixture
    }

    /// A device in its reset state.
    pub(super) fn reset() -> Fixture {
        let image = TempImage::new(SECTORS);
        let disk = Arc::new(DiskFile::open(&image.path).unwrap());
        Fixture {
            image,
            memory: DomainMemory::new(2 << 20).unwrap(),
            device: BlkDevice::new(disk),
            published: 0,
        }
    }

    pub(super) fn read(&mut self, offset: u64) -> Result<u32, DeviceFault> {
        let mut data = [0u8; 4];
        self.device.mmio_read(BLK_MMIO_BASE + offset, &mut data)?;
        Ok(u32::from_le_bytes(data))
    }

    pub(super) fn write(&mut self, offset: u64, value: u32) -> Result<(), DeviceFault> {
        self.device
            .mmio_write(&self.memory, BLK_MMIO_BASE + offset, &value.to_le_bytes())
    }

    pub(super) fn status(&mut self, value: u32) -> Result<(), DeviceFault> {
        self.write(reg::STATUS, value)
    }

    /// Reset, ACKNOWLEDGE, DRIVER, `features`, FEATURES_OK.
    pub(super) fn handshake(&mut self, features: u64) {
        self.status(0).unwrap();
        self.status(STATUS_ACKNOWLEDGE).unwrap();
        self.status(STATUS_ACKNOWLEDGE | STATUS_DRIVER).unwrap();
        self.write(reg::DRIVER_FEATURES_SEL, 0).unwrap();
        self.write(reg::DRIVER_FEATURES, features as u32).unwrap();
        self.write(reg::DRIVER_FEATURES_SEL, 1).unwrap();
        self.write(reg::DRIVER_FEATURES, (features >> 32) as u32)
            .unwrap();
        self.status(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK)
            .unwrap();
    }

    /// Configures queue 0 and makes it ready.
    pub(super) fn queue(
        &mut self,
        size: u32,
        desc: u64,
        avail: u64,
        used: u64,
    ) -> Result<(), DeviceFault> {
        self.write(reg::QUEUE_SEL, 0)?;
        self.write(reg::QUEUE_NUM, size)?;
        for (low, value) in [
            (reg::QUEUE_DESC_LOW, desc),
            (reg::QUEUE_DRIVER_LOW, avail),
            (reg::QUEUE_DEVICE_LOW, used),
        ] {
            self.write(low, value as u32)?;
            self.write(low + 4, (value >> 32) as u32)?;
        }
        self.write(reg::QUEUE_READY, 1)
    }

    pub(super) fn desc(&self, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let entry = RINGS + u64::from(index) * 16;
        let mem = self.memory.guest();
        mem.write_obj(addr, GuestAddress(entry)).unwrap();
        mem.write_obj(len, GuestAddress(entry + 8)).unwrap();
        mem.write_obj(flags, GuestAddress(entry + 12)).unwrap();
        mem.write_obj(next, GuestAddress(entry + 14)).unwrap();
    }

    /// Writes a request header for the chain whose head is `head`, at its slot.
    pub(super) fn header(&self, head: u16, kind: u32, sector: u64) -> u64 {
        let addr = HEADERS + u64::from(head) * 16;
        let header = virtio_seep::abi::blk::RequestHeader {
            kind,
            reserved: 0,
            sector,
        };
        self.memory
            .guest()
            .write_slice(zerocopy::IntoBytes::as_bytes(&header), GuestAddress(addr))
            .unwrap();
        addr
    }

    /// Offers the chain at `head` in the avail ring.
    pub(super) fn publish(&mut self, head: u16) {
        let mem = self.memory.guest();
        let slot = AVAIL + 4 + 2 * u64::from(self.published % SIZE);
        mem.write_obj(head, GuestAddress(slot)).unwrap();
        self.published = self.published.wrapping_add(1);
        mem.write_obj(self.published, GuestAddress(AVAIL + 2))
            .unwrap();
    }

    pub(super) fn notify(&mut self) -> Result<(), DeviceFault> {
        self.write(reg::QUEUE_NOTIFY, 0)
    }

    /// A three-descriptor request at slots `head`, `head + 1`, `head + 2`: header,
    /// one data segment at `data` of `len` bytes (`flags`), status.
    pub(super) fn request(&mut self, head: u16, kind: u32, sector: u64, data: u64, len: u32) {
        let header = self.header(head, kind, sector);
        let data_flags = if kind == T_OUT { NEXT } else { NEXT | WRITE };
        self.desc(head, header, 16, NEXT, head + 1);
        self.desc(head + 1, data, len, data_flags, head + 2);
        self.desc(head + 2, STATUSES + u64::from(head), 1, WRITE, 0);
        self.publish(head);
    }

    pub(super) fn used_idx(&self) -> u16 {
        self.memory
            .guest()
            .read_obj(GuestAddress(USED + 2))
            .unwrap()
    }

    /// Used ring entry `n`: (head, written).
    pub(super) fn used(&self, n: u16) -> (u32, u32) {
        let entry = USED + 4 + 8 * u64::from(n % SIZE);
        let mem = self.memory.guest();
        (
            mem.read_obj(GuestAddress(entry)).unwrap(),
            mem.read_obj(GuestAddress(entry + 4)).unwrap(),
        )
    }

    pub(super) fn status_of(&self, head: u16) -> u8 {
        self.memory
            .guest()
            .read_obj(GuestAddress(STATUSES + u64::from(head)))
            .unwrap()
    }

    pub(super) fn guest_bytes(&self, addr: u64, len: usize) -> Vec<u8> {
        let mut bytes = vec![0; len];
        self.memory
            .guest()
            .read_slice(&mut bytes, GuestAddress(addr))
            .unwrap();
        bytes
    }
}

/// The initial bytes of sectors `first .. first + count`.
fn sectors_of(first: u64, count: u64) -> Vec<u8> {
    let start = (first * SECTOR_SIZE) as usize;
    (start..start + (count * SECTOR_SIZE) as usize)
        .map(pattern)
        .collect()
}

#[test]
fn identifies_itself_and_its_geometry() {
    let mut f = Fixture::reset();
    assert_eq!(f.read(reg::MAGIC_VALUE), Ok(MAGIC));
    assert_eq!(f.read(reg::VERSION), Ok(2));
    assert_eq!(f.read(reg::DEVICE_ID), Ok(2));
    f.write(reg::DEVICE_FEATURES_SEL, 1).unwrap();
    assert_eq!(f.read(reg::DEVICE_FEATURES), Ok(1 << (F_VERSION_1 - 32)));
    f.write(reg::DEVICE_FEATURES_SEL, 0).unwrap();
    assert_eq!(
        f.read(reg::DEVICE_FEATURES).unwrap() & (1 << F_FLUSH),
        1 << F_FLUSH
    );
    assert_eq!(f.read(reg::QUEUE_NUM_MAX), Ok(256));
    let mut capacity = [0u8; 8];
    f.device
        .mmio_read(BLK_MMIO_BASE + reg::CONFIG, &mut capacity)
        .unwrap();
    assert_eq!(u64::from_le_bytes(capacity), SECTORS);
    assert_eq!(f.read(reg::CONFIG + config::BLK_SIZE), Ok(512));
    assert_eq!(f.read(reg::CONFIG + config::SIZE_MAX), Ok(SIZE_MAX));
    assert!(BlkDevice::owns(BLK_MMIO_BASE + BLK_MMIO_SIZE - 4));
    assert!(!BlkDevice::owns(BLK_MMIO_BASE + BLK_MMIO_SIZE));
    assert!(!BlkDevice::owns(BLK_MMIO_BASE - 4));
}

#[test]
fn reads_land_in_guest_memory_and_are_marked_dirty() {
    let mut f = Fixture::ready();
    f.memory.take_vmm_written();
    f.request(0, T_IN, 3, DATA, 1024);
    f.notify().unwrap();
    assert_eq!(f.used_idx(), 1);
    assert_eq!(f.used(0), (0, 1024 + 1));
    assert_eq!(f.status_of(0), S_OK);
    assert_eq!(f.guest_bytes(DATA, 1024), sectors_of(3, 2));
    let written = f.memory.take_vmm_written();
    let page = (DATA / 4096) as usize;
    assert_ne!(
        written[page / 64] & (1 << (page % 64)),
        0,
        "data page dirty"
    );
    assert_eq!(f.device.stats().bytes_read, 1024);
}

#[test]
fn writes_reach_the_file_and_flush_succeeds() {
    let mut f = Fixture::ready();
    let data: Vec<u8> = (0..1536u32).map(|i| (i % 251) as u8).collect();
    f.memory
        .guest()
        .write_slice(&data, GuestAddress(DATA))
        .unwrap();
    f.request(0, T_OUT, 10, DATA, 1536);
    let flush = f.header(3, T_FLUSH, 0);
    f.desc(3, flush, 16, NEXT, 4);
    f.desc(4, STATUSES + 3, 1, WRITE, 0);
    f.publish(3);
    f.notify().unwrap();
    assert_eq!(f.used_idx(), 2, "both requests in one notify");
    assert_eq!((f.status_of(0), f.status_of(3)), (S_OK, S_OK));
    assert_eq!(f.used(0), (0, 1), "a write returns only the status byte");
    let disk = f.image.bytes();
    assert_eq!(&disk[10 * 512..13 * 512], &data[..]);
    assert_eq!(
        &disk[..10 * 512],
        &sectors_of(0, 10)[..],
        "nothing else changed"
    );
    assert_eq!(&disk[13 * 512..], &sectors_of(13, SECTORS - 13)[..]);
    assert_eq!(f.device.stats().flushes, 1);
}

#[test]
fn scattered_segments_and_get_id() {
    let mut f = Fixture::ready();
    let header = f.header(0, T_IN, 60);
    f.desc(0, header, 16, NEXT, 1);
    f.desc(1, DATA, 512, NEXT | WRITE, 2);
    f.desc(2, DATA + 0x4000, 1024, NEXT | WRITE, 3);
    f.desc(3, DATA + 0x9000, 512, NEXT | WRITE, 4);
    f.desc(4, STATUSES, 1, WRITE, 0);
    f.publish(0);
    let id = f.header(5, T_GET_ID, 0);
    f.desc(5, id, 16, NEXT, 6);
    f.desc(6, DATA + 0x20000, 20, NEXT | WRITE, 7);
    f.desc(7, STATUSES + 5, 1, WRITE, 0);
    f.publish(5);
    f.notify().unwrap();
    assert_eq!(f.status_of(0), S_OK);
    let disk = sectors_of(60, 4);
    assert_eq!(f.guest_bytes(DATA, 512), disk[..512]);
    assert_eq!(f.guest_bytes(DATA + 0x4000, 1024), disk[512..1536]);
    assert_eq!(f.guest_bytes(DATA + 0x9000, 512), disk[1536..]);
    assert_eq!(f.status_of(5), S_OK);
    assert_eq!(&f.guest_bytes(DATA + 0x20000, 15), b"ankh-virtio-blk");
    assert_eq!(f.used(1), (5, 21));
}

#[test]
fn unknown_request_types_are_unsupported_not_faults() {
    let mut f = Fixture::ready();
    f.request(0, 99, 0, DATA, 512);
    f.notify().unwrap();
    assert_eq!(f.status_of(0), S_UNSUPP);
}

/// Runs one malformed request (a write, so a device that ignored the problem would
/// change the file) and returns the fault, after checking the file is untouched.
fn refused(build: impl FnOnce(&mut Fixture)) -> DeviceFault {
    let mut f = Fixture::ready();
    f.memory
        .guest()
        .write_slice(&[0xee; 8192], GuestAddress(DATA))
        .unwrap();
    let before = f.image.bytes();
    build(&mut f);
    let fault = f.notify().unwrap_err();
    assert_eq!(
        f.image.bytes(),
        before,
        "the disk is unchanged after {fault}"
    );
    assert_eq!(f.used_idx(), 0, "nothing completed");
    fault
}

#[test]
fn writes_past_the_end_are_refused() {
    let fault = refused(|f| f.request(0, T_OUT, SECTORS - 1, DATA, 1024));
    assert_eq!(
        fault,
        DeviceFault::SectorOutOfRange {
            sector: SECTORS - 1,
            count: 2,
            capacity: SECTORS
        }
    );
    let fault = refused(|f| f.request(0, T_OUT, u64::MAX, DATA, 512));
    assert!(
        matches!(fault, DeviceFault::SectorOutOfRange { .. }),
        "{fault}"
    );
}

#[test]
fn lengths_must_be_whole_sectors_and_bounded() {
    let fault = refused(|f| f.request(0, T_OUT, 0, DATA, 700));
    assert_eq!(fault, DeviceFault::UnalignedLength { len: 700 });
    let fault = refused(|f| f.request(0, T_OUT, 0, DATA, SIZE_MAX + 512));
    assert!(
        matches!(fault, DeviceFault::SegmentTooLong { .. }),
        "{fault}"
    );
    let fault = refused(|f| f.request(0, T_OUT, 0, DATA, u32::MAX));
    assert!(
        matches!(fault, DeviceFault::SegmentTooLong { .. }),
        "{fault}"
    );
    let fault = refused(|f| {
        let header = f.header(0, T_OUT, 0);
        f.desc(0, header, 16, NEXT, 1);
        f.desc(1, STATUSES, 1, WRITE, 0);
        f.publish(0);
    });
    assert_eq!(fault, DeviceFault::UnalignedLength { len: 0 });
}

#[test]
fn descriptors_outside_ram_or_in_the_vmm_area_are_refused() {
    for addr in [2 << 20, u64::MAX - 100, 0x3000, 0x0] {
        let fault = refused(|f| f.request(0, T_OUT, 0, addr, 512));
        assert!(
            matches!(fault, DeviceFault::BadDescriptor(_)),
            "{addr:#x}: {fault}"
        );
    }
    let fault = refused(|f| {
        f.request(0, T_OUT, 0, DATA, 512);
        f.desc(2, 0x9000, 1, WRITE, 0);
    });
    assert!(fault.to_string().contains("VMM's area"), "{fault}");
}

#[test]
fn loops_long_chains_and_bad_indexes_are_refused() {
    let fault = refused(|f| {
        f.request(0, T_OUT, 0, DATA, 512);
        f.desc(1, DATA, 512, NEXT, 0);
    });
    assert_eq!(fault, DeviceFault::Queue(QueueFault::Loop));
    let fault = refused(|f| {
        let header = f.header(0, T_OUT, 0);
        f.desc(0, header, 16, NEXT, 1);
        for i in 1..15 {
            f.desc(i, DATA, 512, NEXT, i + 1);
        }
        f.desc(15, DATA, 512, NEXT, 0);
        f.publish(0);
    });
    assert_eq!(fault, DeviceFault::Queue(QueueFault::Loop));
    let fault = refused(|f| {
        f.request(0, T_OUT, 0, DATA, 512);
        f.desc(1, DATA, 512, NEXT, 40);
    });
    assert!(fault.to_string().contains("out of range"), "{fault}");
    let fault = refused(|f| f.publish(17));
    assert!(fault.to_string().contains("out of range"), "{fault}");
}

#[test]
fn chains_longer_than_a_request_are_refused() {
    let mut f = Fixture::reset();
    f.handshake(DEVICE_FEATURES);
    f.queue(64, RINGS, RINGS + 0x400, RINGS + 0x600).unwrap();
    f.status(7 | STATUS_FEATURES_OK).unwrap();
    let header = f.header(0, T_OUT, 0);
    f.desc(0, header, 16, NEXT, 1);
    for i in 1..=(SEG_MAX as u16 + 1) {
        f.desc(i, DATA, 512, NEXT, i + 1);
    }
    f.desc(SEG_MAX as u16 + 2, STATUSES, 1, WRITE, 0);
    let mem = f.memory.guest();
    mem.write_obj(0u16, GuestAddress(RINGS + 0x400 + 4))
        .unwrap();
    mem.write_obj(1u16, GuestAddress(RINGS + 0x400 + 2))
        .unwrap();
    let before = f.image.bytes();
    assert_eq!(
        f.notify(),
        Err(DeviceFault::Queue(QueueFault::ChainTooLong {
            max: SEG_MAX as usize + 2
        }))
    );
    assert_eq!(f.image.bytes(), before);
}

#[test]
fn directions_and_layout_are_checked() {
    // A write whose data the device would have to write (and vice versa).
    let fault = refused(|f| {
        f.request(0, T_OUT, 0, DATA, 512);
        f.desc(1, DATA, 512, NEXT | WRITE, 2);
    });
    assert!(
        fault.to_string().contains("device-readable data"),
        "{fault}"
    );
    let fault = refused(|f| {
        f.request(0, T_IN, 0, DATA, 512);
        f.desc(1, DATA, 512, NEXT, 2);
    });
    assert!(
        fault.to_string().contains("device-writable data"),
        "{fault}"
    );
    let fault = refused(|f| {
        f.request(0, T_OUT, 0, DATA, 512);
        f.desc(0, HEADERS, 16, NEXT | WRITE, 1);
    });
    assert!(fault.to_string().contains("header"), "{fault}");
    let fault = refused(|f| {
        f.request(0, T_OUT, 0, DATA, 512);
        f.desc(2, STATUSES, 1, 0, 0);
    });
    assert!(fault.to_string().contains("status"), "{fault}");
    let fault = refused(|f| {
        f.request(0, T_OUT, 0, DATA, 512);
        f.desc(1, DATA, 512, NEXT | INDIRECT, 2);
    });
    assert_eq!(fault, DeviceFault::Queue(QueueFault::Indirect { index: 1 }));
    assert_eq!(fault.kind(), "device-indirect-descriptor");
    let fault = refused(|f| {
        f.request(0, T_FLUSH, 0, DATA, 512);
    });
    assert!(fault.to_string().contains("flush"), "{fault}");
}

#[test]
fn bad_queues_are_refused() {
    for (size, desc, avail, used) in [
        (3, RINGS, AVAIL, USED),
        (512, RINGS, AVAIL, USED),
        (0, RINGS, AVAIL, USED),
        (16, RINGS + 8, AVAIL, USED),
        (16, RINGS, AVAIL + 1, USED),
        (16, RINGS, AVAIL, USED + 2),
        (16, 0x3000, AVAIL, USED),
        (16, RINGS, AVAIL, (2 << 20) - 64),
        (16, RINGS, u64::MAX - 1, USED),
    ] {
        let mut f = Fixture::reset();
        f.handshake(DEVICE_FEATURES);
        let fault = f.queue(size, desc, avail, used).unwrap_err();
        assert!(matches!(fault, DeviceFault::Queue(_)), "{fault}");
        assert_eq!(f.read(reg::QUEUE_READY), Ok(0));
    }
    let mut f = Fixture::ready();
    f.memory
        .guest()
        .write_obj(100u16, GuestAddress(AVAIL + 2))
        .unwrap();
    let fault = f.notify().unwrap_err();
    assert!(fault.to_string().contains("avail ring"), "{fault}");
}

#[test]
fn the_protocol_is_enforced() {
    let mut f = Fixture::reset();
    assert_eq!(
        f.notify(),
        Err(DeviceFault::Protocol("notify before DRIVER_OK"))
    );
    assert!(matches!(
        f.status(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_DRIVER_OK),
        Err(DeviceFault::Protocol(_))
    ));
    // Features without VERSION_1 are refused the way virtio says: FEATURES_OK reads
    // back clear.
    let mut f = Fixture::reset();
    f.handshake(1 << F_FLUSH);
    assert_eq!(f.read(reg::STATUS).unwrap() & STATUS_FEATURES_OK, 0);
    // Features the device does not offer, too.
    let mut f = Fixture::reset();
    f.handshake(DEVICE_FEATURES | (1 << 28));
    assert_eq!(f.read(reg::STATUS).unwrap() & STATUS_FEATURES_OK, 0);
    let mut f = Fixture::ready();
    assert_eq!(f.read(reg::STATUS), Ok(15));
    assert!(matches!(
        f.write(reg::QUEUE_NUM, 8),
        Err(DeviceFault::Protocol(_))
    ));
    assert!(matches!(
        f.write(reg::QUEUE_NOTIFY, 1),
        Err(DeviceFault::Protocol(_))
    ));
    assert!(matches!(f.status(1), Err(DeviceFault::Protocol(_))));
    // A reset forgets everything; notifying again is a protocol violation.
    f.status(0).unwrap();
    assert_eq!(f.read(reg::QUEUE_READY), Ok(0));
    assert!(matches!(f.notify(), Err(DeviceFault::Protocol(_))));
}

#[test]
fn register_accesses_are_checked() {
    let mut f = Fixture::ready();
    let base = BLK_MMIO_BASE;
    let mut two = [0u8; 2];
    fn bad<T>(offset: u64, len: usize, write: bool) -> Result<T, DeviceFault> {
        Err(DeviceFault::BadRegisterAccess { offset, len, write })
    }
    assert_eq!(
        f.device.mmio_read(base + reg::STATUS, &mut two),
        bad(0x70, 2, false)
    );
    assert_eq!(
        f.device.mmio_read(base + 0x72, &mut [0; 4]),
        bad(0x72, 4, false)
    );
    assert_eq!(f.read(reg::QUEUE_NOTIFY), bad(0x50, 4, false));
    assert_eq!(f.read(0x200), bad(0x200, 4, false));
    assert_eq!(f.write(reg::MAGIC_VALUE, 0), bad(0, 4, true));
    assert_eq!(f.write(reg::CONFIG, 0), bad(0x100, 4, true));
    assert_eq!(
        f.device.mmio_write(&f.memory, base + reg::STATUS, &[0; 8]),
        bad(0x70, 8, true)
    );
    let mut odd = [0u8; 4];
    assert_eq!(
        f.device.mmio_read(base + reg::CONFIG + 2, &mut odd),
        bad(0x102, 4, false)
    );
    assert_eq!(
        f.device.mmio_read(base + BLK_MMIO_SIZE - 8, &mut [0; 8]),
        bad(BLK_MMIO_SIZE - 8, 8, false)
    );
}

#[test]
fn snapshots_put_the_queue_back() {
    let mut f = Fixture::ready();
    let at_boundary = f.device.snapshot();
    f.request(0, T_IN, 0, DATA, 512);
    f.notify().unwrap();
    assert_ne!(f.device.snapshot(), at_boundary);
    f.device.restore(&at_boundary);
    assert_eq!(f.device.snapshot(), at_boundary);
    // After the guest's memory is rolled back too, the same request runs again.
    f.memory
        .guest()
        .write_obj(0u16, GuestAddress(USED + 2))
        .unwrap();
    f.notify().unwrap();
    assert_eq!(f.used_idx(), 1);
}

#[test]
fn host_io_failures_are_reported_as_ioerr() {
    let mut f = Fixture::ready();
    // The image shrinks behind the device's back: the read hits the end of the file.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&f.image.path)
        .unwrap()
        .set_len(512)
        .unwrap();
    f.request(0, T_IN, 8, DATA, 512);
    f.notify().unwrap();
    assert_eq!(f.status_of(0), S_IOERR);
}

#[test]
fn images_smaller_than_a_sector_are_refused() {
    let image = TempImage::new(0);
    assert!(matches!(
        DiskFile::open(&image.path),
        Err(DiskError::TooSmall { len: 0, .. })
    ));
    let missing = image.path.with_extension("missing");
    assert!(matches!(
        DiskFile::open(&missing),
        Err(DiskError::Open { .. })
    ));
}

#[test]
fn the_abi_matches_virtio_bindings() {
    use virtio_bindings::bindings::{virtio_blk as vb, virtio_mmio as vm};
    for (ours, theirs) in [
        (reg::MAGIC_VALUE, vm::VIRTIO_MMIO_MAGIC_VALUE),
        (reg::DEVICE_FEATURES, vm::VIRTIO_MMIO_DEVICE_FEATURES),
        (
            reg::DRIVER_FEATURES_SEL,
            vm::VIRTIO_MMIO_DRIVER_FEATURES_SEL,
        ),
        (reg::QUEUE_NUM_MAX, vm::VIRTIO_MMIO_QUEUE_NUM_MAX),
        (reg::QUEUE_READY, vm::VIRTIO_MMIO_QUEUE_READY),
        (reg::QUEUE_NOTIFY, vm::VIRTIO_MMIO_QUEUE_NOTIFY),
        (reg::STATUS, vm::VIRTIO_MMIO_STATUS),
        (reg::QUEUE_DESC_LOW, vm::VIRTIO_MMIO_QUEUE_DESC_LOW),
        (reg::QUEUE_DRIVER_HIGH, vm::VIRTIO_MMIO_QUEUE_AVAIL_HIGH),
        (reg::QUEUE_DEVICE_LOW, vm::VIRTIO_MMIO_QUEUE_USED_LOW),
        (reg::CONFIG_GENERATION, vm::VIRTIO_MMIO_CONFIG_GENERATION),
        (reg::CONFIG, vm::VIRTIO_MMIO_CONFIG),
    ] {
        assert_eq!(ours, u64::from(theirs));
    }
    assert_eq!(
        (T_IN, T_OUT, T_FLUSH, T_GET_ID),
        (
            vb::VIRTIO_BLK_T_IN,
            vb::VIRTIO_BLK_T_OUT,
            vb::VIRTIO_BLK_T_FLUSH,
            vb::VIRTIO_BLK_T_GET_ID
        )
    );
    assert_eq!(F_FLUSH, vb::VIRTIO_BLK_F_FLUSH);
    assert_eq!(u32::from(S_UNSUPP), vb::VIRTIO_BLK_S_UNSUPP);
    assert_eq!(ID_BYTES as u32, vb::VIRTIO_BLK_ID_BYTES);
}
