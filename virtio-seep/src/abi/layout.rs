//! Guest-physical memory layout of a domain, set up by the VMM before the first run,
//! and the privilege levels guests run at.
//!
//! Guests run in user mode (CPL3) by default: on this project's hosts (KVM through
//! `kvm_pvm`) supervisor-mode guest code is emulated instruction by instruction, while
//! user-mode code runs natively, thousands of times faster (see `docs/guest-modes.md`).
//! Only the exception stubs run at CPL0, through the IDT the VMM builds. Kernel mode
//! (CPL0 throughout) is available per domain.
//!
//! Guest RAM starts at guest-physical address 0 and is identity-mapped (virtual =
//! physical) by page tables the VMM writes. The first 2 MiB use 4 KiB pages so that the
//! null page can stay unmapped; the rest of the first [`IDENTITY_MAP_SIZE`] bytes use
//! 2 MiB pages. Addresses that are mapped but not backed by RAM reach the VMM as MMIO
//! exits; addresses above the map fault in the guest (#PF), except the device window of
//! a domain that owns a device (see below).
//!
//! ```text
//! 0x0000_0000  null page (not present: a null dereference faults)
//! 0x0000_1000  GDT, then the TSS with its I/O permission bitmap       (supervisor)
//! 0x0000_2000  boot information (see `boot`)                          (user, read)
//! 0x0000_3000  page tables: PML4, PDPT, 4 PDs, the PT of the first 2 MiB (supervisor)
//! 0x0000_a000  IDT: 256 gates to the image's exception stubs          (supervisor)
//! 0x0000_b000  page directory of the device window (device domains only) (supervisor)
//! 0x0000_c000  exception stack (IST1), 16 KiB, top at 0x1_0000         (supervisor)
//! 0x0010_0000  the image (ELF PT_LOAD segments), then whatever the guest wants
//! 0x1_0000_0000 device window: the virtio-mmio registers of the domain's block
//!              device (`abi::blk`), one uncached 2 MiB page, mapped only in the
//!              domain that owns the device; no RAM there, every access is an MMIO exit
//! ```
//!
//! "Supervisor" pages are not accessible from user mode, so a user-mode guest cannot
//! corrupt its own exception handling. The TSS's I/O bitmap lets user mode reach the
//! hypercall ports and nothing else.

/// Size of a small page.
pub const PAGE_SIZE: u64 = 0x1000;

/// Guest-physical address of the GDT.
pub const GDT_ADDR: u64 = 0x1000;
/// Guest-physical address of the 64-bit TSS (in the same page as the GDT).
pub const TSS_ADDR: u64 = 0x1080;
/// Guest-physical address of the boot information.
pub const BOOT_INFO_ADDR: u64 = 0x2000;
/// Guest-physical address of the PML4.
pub const PML4_ADDR: u64 = 0x3000;
/// Guest-physical address of the PDPT.
pub const PDPT_ADDR: u64 = 0x4000;
/// Guest-physical address of the first of the four page directories.
pub const PD_ADDR: u64 = 0x5000;
/// Guest-physical address of the page table that maps the first 2 MiB with 4 KiB pages.
pub const PT_LOW_ADDR: u64 = 0x9000;
/// Guest-physical address of the IDT (256 16-byte gates).
pub const IDT_ADDR: u64 = 0xa000;
/// Guest-physical address of the page directory that maps the device window (written
/// only for a domain that owns a device; the page is unused otherwise).
pub const DEVICE_PD_ADDR: u64 = 0xb000;
/// Guest-physical address of the device window: just above the identity map, so it is
/// mapped in no domain but the one that owns the device.
pub const DEVICE_WINDOW_BASE: u64 = IDENTITY_MAP_SIZE;
/// Bytes the device window's mapping covers (one uncached 2 MiB page); the registers
/// occupy its first page, any other access in it is a fault of the domain.
pub const DEVICE_WINDOW_MAP_SIZE: u64 = 2 << 20;
/// Lowest address of the exception stack used through IST1.
pub const EXCEPTION_STACK_BOTTOM: u64 = 0xc000;
/// One past the highest address of the exception stack.
pub const EXCEPTION_STACK_TOP: u64 = 0x1_0000;
/// Lowest address an image segment may occupy.
pub const IMAGE_BASE: u64 = 0x10_0000;
/// Bytes of guest-physical address space covered by the identity map.
pub const IDENTITY_MAP_SIZE: u64 = 4 << 30;

/// One past the last supervisor-only byte of the low area (except the boot info page).
pub const SUPERVISOR_AREA_END: u64 = 0x1_0000;

/// GDT selector of the 64-bit supervisor code segment (the exception stubs run here).
pub const CODE64_SELECTOR: u16 = 0x08;
/// GDT selector of the supervisor data segment.
pub const DATA_SELECTOR: u16 = 0x10;
/// GDT selector of the user data segment, with RPL 3 (SYSRET layout: STAR base + 8).
pub const USER_DATA_SELECTOR: u16 = 0x20 | 3;
/// GDT selector of the 64-bit user code segment, with RPL 3 (STAR base + 16).
pub const USER_CODE64_SELECTOR: u16 = 0x28 | 3;
/// GDT selector of the TSS.
pub const TSS_SELECTOR: u16 = 0x30;

/// Smallest guest RAM a domain may have: room for the image above [`IMAGE_BASE`].
pub const MIN_MEMORY_SIZE: u64 = 2 << 20;
/// Largest guest RAM a domain may have (RAM must fit below the MMIO-capable map).
pub const MAX_MEMORY_SIZE: u64 = 1 << 30;

const _: () = assert!(TSS_ADDR >= GDT_ADDR + (TSS_SELECTOR as u64) + 16);
const _: () = assert!(PT_LOW_ADDR + PAGE_SIZE <= IDT_ADDR);
const _: () = assert!(IDT_ADDR + 256 * 16 <= DEVICE_PD_ADDR);
const _: () = assert!(DEVICE_PD_ADDR + PAGE_SIZE <= EXCEPTION_STACK_BOTTOM);
const _: () =
    assert!(DEVICE_WINDOW_BASE >= IDENTITY_MAP_SIZE && DEVICE_WINDOW_BASE > MAX_MEMORY_SIZE);
const _: () = assert!(DEVICE_WINDOW_BASE.is_multiple_of(DEVICE_WINDOW_MAP_SIZE));
const _: () = assert!(EXCEPTION_STACK_TOP == SUPERVISOR_AREA_END);
const _: () = assert!(EXCEPTION_STACK_TOP <= IMAGE_BASE);
const _: () = assert!(PD_ADDR + 4 * PAGE_SIZE == PT_LOW_ADDR);
const _: () = assert!(IDENTITY_MAP_SIZE == 4 * (1 << 30));
