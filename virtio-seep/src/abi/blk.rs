//! The block device: virtio-blk on the virtio-mmio transport, version 2 (the modern
//! layout of the virtio 1.x specification, sections 4.2 and 5.2), in the device window
//! of the one domain of a system that owns the disk.
//!
//! The registers are at [`BLK_MMIO_BASE`] (`layout::DEVICE_WINDOW_BASE`, mapped
//! uncached and only in that domain). Every access is an MMIO exit to the VMM. A driver:
//!
//! 1. checks [`MAGIC`], [`VERSION`] and [`DEVICE_ID_BLOCK`];
//! 2. resets (`STATUS` = 0), sets `ACKNOWLEDGE` and `DRIVER`, reads the device's
//!    feature words (`DEVICE_FEATURES_SEL` 0 and 1), writes a subset that includes
//!    [`F_VERSION_1`] to `DRIVER_FEATURES`, sets `FEATURES_OK` and reads it back;
//! 3. sets queue 0 up: `QUEUE_SEL` = 0, a power-of-two `QUEUE_NUM` up to
//!    `QUEUE_NUM_MAX`, the three ring addresses, `QUEUE_READY` = 1; sets `DRIVER_OK`;
//! 4. per request, posts a chain: a device-readable [`RequestHeader`], the data
//!    segments (device-writable for [`T_IN`] and [`T_GET_ID`], device-readable for
//!    [`T_OUT`], none for [`T_FLUSH`]), then one device-writable status byte; then
//!    writes 0 to `QUEUE_NOTIFY`.
//!
//! There are no interrupts: the VMM processes every available chain inside the exit of
//! the `QUEUE_NOTIFY` write, so when that instruction retires the used ring already
//! holds the completions, which the driver polls. Completion status: [`S_OK`],
//! [`S_IOERR`] (the host file failed), [`S_UNSUPP`] (an unknown request type).
//!
//! The VMM trusts nothing the driver writes. These are faults of the domain (it stops),
//! never I/O errors: a register access that is not a 32-bit aligned access to a
//! register (config space: reads of 1, 2, 4 or 8 bytes), a write to a read-only
//! register, a queue configured with a bad size or ring addresses (outside RAM, in the
//! VMM's area below `layout::SUPERVISOR_AREA_END`, misaligned), a notify before
//! `DRIVER_OK`, and any malformed chain: descriptors outside RAM or in the VMM's area,
//! loops, chains longer than [`SEG_MAX`] + 2, indirect descriptors, a segment longer
//! than [`SIZE_MAX`], wrong directions, a data length that is not a multiple of
//! [`SECTOR_SIZE`], sectors past the end of the disk. A malformed request is refused
//! before any byte of it reaches the disk.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::abi::layout::{DEVICE_WINDOW_BASE, DEVICE_WINDOW_MAP_SIZE, PAGE_SIZE};

/// Guest-physical address of the block device's registers.
pub const BLK_MMIO_BASE: u64 = DEVICE_WINDOW_BASE;
/// Bytes of the register block (registers, then config space from [`reg::CONFIG`]).
pub const BLK_MMIO_SIZE: u64 = PAGE_SIZE;

/// Value of the `MAGIC_VALUE` register: "virt".
pub const MAGIC: u32 = 0x7472_6976;
/// Value of the `VERSION` register: the modern (virtio 1.x) layout.
pub const VERSION: u32 = 2;
/// Value of the `DEVICE_ID` register: a block device.
pub const DEVICE_ID_BLOCK: u32 = 2;
/// Value of the `VENDOR_ID` register: "ANKH".
pub const VENDOR_ID: u32 = u32::from_le_bytes(*b"ANKH");

/// Register offsets from [`BLK_MMIO_BASE`] (virtio 1.x, 4.2.2).
pub mod reg {
    /// R: [`super::MAGIC`].
    pub const MAGIC_VALUE: u64 = 0x000;
    /// R: [`super::VERSION`].
    pub const VERSION: u64 = 0x004;
    /// R: [`super::DEVICE_ID_BLOCK`].
    pub const DEVICE_ID: u64 = 0x008;
    /// R: [`super::VENDOR_ID`].
    pub const VENDOR_ID: u64 = 0x00c;
    /// R: the device's feature bits `32 * DEVICE_FEATURES_SEL ..`.
    pub const DEVICE_FEATURES: u64 = 0x010;
    /// W: which word `DEVICE_FEATURES` shows.
    pub const DEVICE_FEATURES_SEL: u64 = 0x014;
    /// W: the driver's feature bits `32 * DRIVER_FEATURES_SEL ..`.
    pub const DRIVER_FEATURES: u64 = 0x020;
    /// W: which word `DRIVER_FEATURES` sets.
    pub const DRIVER_FEATURES_SEL: u64 = 0x024;
    /// W: the queue the `QUEUE_*` registers are about (only queue 0 exists).
    pub const QUEUE_SEL: u64 = 0x030;
    /// R: the largest queue size (0: no such queue).
    pub const QUEUE_NUM_MAX: u64 = 0x034;
    /// W: the queue size the driver chose.
    pub const QUEUE_NUM: u64 = 0x038;
    /// RW: 1 once the queue is set up.
    pub const QUEUE_READY: u64 = 0x044;
    /// W: the queue index whose chains the device processes now.
    pub const QUEUE_NOTIFY: u64 = 0x050;
    /// R: always 0 (no interrupts).
    pub const INTERRUPT_STATUS: u64 = 0x060;
    /// W: ignored (no interrupts).
    pub const INTERRUPT_ACK: u64 = 0x064;
    /// RW: the device status bits (`STATUS_*`); writing 0 resets the device.
    pub const STATUS: u64 = 0x070;
    /// W: descriptor table address, low 32 bits.
    pub const QUEUE_DESC_LOW: u64 = 0x080;
    /// W: descriptor table address, high 32 bits.
    pub const QUEUE_DESC_HIGH: u64 = 0x084;
    /// W: avail ring ("driver area") address, low 32 bits.
    pub const QUEUE_DRIVER_LOW: u64 = 0x090;
    /// W: avail ring address, high 32 bits.
    pub const QUEUE_DRIVER_HIGH: u64 = 0x094;
    /// W: used ring ("device area") address, low 32 bits.
    pub const QUEUE_DEVICE_LOW: u64 = 0x0a0;
    /// W: used ring address, high 32 bits.
    pub const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
    /// R: changes when the config space changes (it never does here).
    pub const CONFIG_GENERATION: u64 = 0x0fc;
    /// R: start of the device's config space ([`super::config`]).
    pub const CONFIG: u64 = 0x100;
}

/// Offsets inside the config space (add [`reg::CONFIG`]; virtio 1.x, 5.2.4).
pub mod config {
    /// u64: sectors on the disk.
    pub const CAPACITY: u64 = 0;
    /// u32: most bytes of one data segment (with [`super::F_SIZE_MAX`]).
    pub const SIZE_MAX: u64 = 8;
    /// u32: most data segments of one request (with [`super::F_SEG_MAX`]).
    pub const SEG_MAX: u64 = 12;
    /// u32: the disk's block size (with [`super::F_BLK_SIZE`]).
    pub const BLK_SIZE: u64 = 20;
    /// Bytes of config space the device answers reads in; unused fields read as 0.
    pub const SIZE: u64 = 64;
}

/// Device status bit: the driver noticed the device.
pub const STATUS_ACKNOWLEDGE: u32 = 1;
/// Device status bit: the driver knows how to drive it.
pub const STATUS_DRIVER: u32 = 2;
/// Device status bit: the driver is ready; requests may be posted.
pub const STATUS_DRIVER_OK: u32 = 4;
/// Device status bit: feature negotiation is complete (the device clears it when it
/// refuses the driver's features).
pub const STATUS_FEATURES_OK: u32 = 8;
/// Device status bit: the driver gave up.
pub const STATUS_FAILED: u32 = 128;

/// Feature bit: `config::SIZE_MAX` is valid.
pub const F_SIZE_MAX: u32 = 1;
/// Feature bit: `config::SEG_MAX` is valid.
pub const F_SEG_MAX: u32 = 2;
/// Feature bit: `config::BLK_SIZE` is valid.
pub const F_BLK_SIZE: u32 = 6;
/// Feature bit: [`T_FLUSH`] is supported (writes are durable only after a flush).
pub const F_FLUSH: u32 = 9;
/// Feature bit: a virtio 1.x device; drivers must accept it.
pub const F_VERSION_1: u32 = 32;

/// Every feature bit the device offers.
pub const DEVICE_FEATURES: u64 =
    (1 << F_SIZE_MAX) | (1 << F_SEG_MAX) | (1 << F_BLK_SIZE) | (1 << F_FLUSH) | (1 << F_VERSION_1);

/// Largest queue size (`QUEUE_NUM_MAX` of queue 0).
pub const QUEUE_NUM_MAX: u16 = 256;
/// Most data segments of one request; a chain has at most `SEG_MAX + 2` descriptors.
pub const SEG_MAX: u32 = 16;
/// Most bytes of one data segment.
pub const SIZE_MAX: u32 = 1 << 20;
/// Bytes per sector: the unit of `capacity`, of [`RequestHeader::sector`] and of data
/// lengths.
pub const SECTOR_SIZE: u64 = 512;

/// Request type: read sectors into the data segments.
pub const T_IN: u32 = 0;
/// Request type: write the data segments to sectors.
pub const T_OUT: u32 = 1;
/// Request type: make every completed write durable on the host.
pub const T_FLUSH: u32 = 4;
/// Request type: the device's id string ([`ID_BYTES`] bytes, NUL padded).
pub const T_GET_ID: u32 = 8;

/// Completion status: done.
pub const S_OK: u8 = 0;
/// Completion status: the host failed the I/O.
pub const S_IOERR: u8 = 1;
/// Completion status: unknown request type.
pub const S_UNSUPP: u8 = 2;

/// Bytes of the id [`T_GET_ID`] returns.
pub const ID_BYTES: usize = 20;
/// The id the device returns (NUL padded to [`ID_BYTES`]).
pub const DEVICE_ID_STRING: &[u8] = b"ankh-virtio-blk";

/// The first descriptor of every request (virtio 1.x, 5.2.6).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct RequestHeader {
    /// [`T_IN`], [`T_OUT`], [`T_FLUSH`] or [`T_GET_ID`].
    pub kind: u32,
    /// Zero.
    pub reserved: u32,
    /// First sector (for [`T_IN`] and [`T_OUT`]).
    pub sector: u64,
}

// Tripwires: these values are the virtio specification's and part of the ABI.
const _: () = assert!(core::mem::size_of::<RequestHeader>() == 16);
const _: () = assert!(BLK_MMIO_SIZE <= DEVICE_WINDOW_MAP_SIZE);
const _: () = assert!(reg::CONFIG + config::SIZE <= BLK_MMIO_SIZE);
const _: () = assert!(QUEUE_NUM_MAX.is_power_of_two());
const _: () = assert!(DEVICE_ID_STRING.len() <= ID_BYTES);
const _: () = assert!((SIZE_MAX as u64).is_multiple_of(SECTOR_SIZE));
