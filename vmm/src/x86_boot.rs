//! Putting a fresh domain straight into 64-bit long mode: GDT, TSS, IDT, identity page
//! tables and boot information in guest memory, and the vCPU's registers.
//!
//! There is no firmware and no real mode: the VMM writes the structures described in
//! [`virtio_seep::abi::layout`] and sets CR0/CR4/EFER and the segment registers as a
//! long-mode kernel would have them, so the first instruction the guest runs is its
//! ELF entry point, in the [`GuestMode`] the domain asked for.

use kvm_bindings::{kvm_regs, kvm_segment, kvm_sregs};
use virtio_seep::abi::boot::{
    BootInfo, Peer, BOOT_INFO_MAGIC, DOMAIN_NAME_MAX, PEERS_MAX, PEER_NAME_MAX,
};
use virtio_seep::abi::hypercall::{HYPERCALL_PORT_BASE, HYPERCALL_PORT_END};
use virtio_seep::abi::layout::{
    BOOT_INFO_ADDR, CODE64_SELECTOR, DATA_SELECTOR, DEVICE_PD_ADDR, DEVICE_WINDOW_BASE,
    DEVICE_WINDOW_MAP_SIZE, EXCEPTION_STACK_BOTTOM, EXCEPTION_STACK_TOP, GDT_ADDR,
    IDENTITY_MAP_SIZE, IDT_ADDR, PAGE_SIZE, PDPT_ADDR, PD_ADDR, PML4_ADDR, PT_LOW_ADDR,
    SUPERVISOR_AREA_END, TSS_ADDR, TSS_SELECTOR, USER_CODE64_SELECTOR, USER_DATA_SELECTOR,
};
use virtio_seep::abi::{ABI_VERSION, EXCEPTION_STUB_SIZE, EXCEPTION_VECTORS};
use virtio_seep::message::DomainId;
use vm_memory::{Bytes, GuestAddress, GuestMemoryError};
use zerocopy::IntoBytes;

use crate::memory::DomainMemory;

/// The privilege level a domain's code runs at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum GuestMode {
    /// CPL3, with the exception stubs at CPL0. Runs natively on `kvm_pvm` hosts, where
    /// supervisor code is emulated; the VMM's structures are out of the guest's reach.
    #[default]
    User,
    /// CPL0 throughout: the guest may load its own IDT. Emulated (slow) on `kvm_pvm`.
    Kernel,
}

const CR0_PE: u64 = 1 << 0;
const CR0_MP: u64 = 1 << 1;
const CR0_ET: u64 = 1 << 4;
const CR0_NE: u64 = 1 << 5;
const CR0_WP: u64 = 1 << 16;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
const RFLAGS_RESERVED: u64 = 1 << 1;

const PTE_PRESENT: u64 = 1 << 0;
const PTE_WRITABLE: u64 = 1 << 1;
const PTE_USER: u64 = 1 << 2;
const PTE_WRITE_THROUGH: u64 = 1 << 3;
const PTE_CACHE_DISABLE: u64 = 1 << 4;
/// Set in every entry the VMM writes. Otherwise the page walker sets it (under shadow
/// paging KVM does, for the guest), again and again on these hosts: each time a guest
/// write to a table page, which the dirty log reports and a checkpoint copies (the low
/// page table trapped about 100 times per workload of `ubench`). The dirty bit stays
/// clear on purpose: with it set in a leaf, shadow paging maps a writable page
/// writable, and logs it as written, on a mere read (spawn's modelled checkpoint cost
/// went up by a third).
const PTE_ACCESSED: u64 = 1 << 5;
const PTE_HUGE: u64 = 1 << 7;
const ENTRIES_PER_TABLE: usize = 512;
const HUGE_PAGE_SIZE: u64 = 2 << 20;

/// Size of the 64-bit TSS proper.
const TSS_SIZE: u64 = 0x68;
/// Offset of IST1 inside the 64-bit TSS.
const TSS_IST1_OFFSET: u64 = 0x24;
/// Offset of the I/O map base inside the 64-bit TSS.
const TSS_IOMAP_OFFSET: u64 = 0x66;
/// Bytes of I/O permission bitmap: one bit per port up to the last hypercall port.
const IOMAP_LEN: u64 = (HYPERCALL_PORT_END as u64).div_ceil(8);
/// TSS limit: the TSS, the bitmap, and the all-ones byte the CPU requires after it.
const TSS_LIMIT: u64 = TSS_SIZE + IOMAP_LEN;

/// GDT: null, supervisor code and data, an unused slot and user data and code (the
/// SYSRET layout), then the two-slot TSS descriptor.
const GDT_ENTRIES: usize = 8;
const CODE64_DESCRIPTOR: u64 = 0x00af_9b00_0000_ffff;
const DATA_DESCRIPTOR: u64 = 0x00cf_9300_0000_ffff;
const USER_DATA_DESCRIPTOR: u64 = 0x00cf_f300_0000_ffff;
const USER_CODE64_DESCRIPTOR: u64 = 0x00af_fb00_0000_ffff;
/// Type of a busy 64-bit TSS, the state KVM expects TR to be in.
const TSS_TYPE_BUSY: u8 = 0xb;
/// Type and attributes of a present, DPL0, 64-bit interrupt gate.
const INTERRUPT_GATE: u64 = 0x8e;
/// IST slot every gate uses.
const GATE_IST: u64 = 1;

const _: () = assert!(TSS_ADDR + TSS_LIMIT < BOOT_INFO_ADDR);
/// The device window is one 2 MiB page of the fifth PDPT entry, outside the identity map.
const DIRECTORY_SPAN: u64 = HUGE_PAGE_SIZE * ENTRIES_PER_TABLE as u64;
const _: () = assert!(DEVICE_WINDOW_MAP_SIZE == HUGE_PAGE_SIZE);
const _: () = assert!(DEVICE_WINDOW_BASE >= IDENTITY_MAP_SIZE);
const _: () = assert!(DEVICE_WINDOW_BASE / DIRECTORY_SPAN < ENTRIES_PER_TABLE as u64);
const _: () = assert!(IDT_ADDR + EXCEPTION_VECTORS * 16 <= EXCEPTION_STACK_BOTTOM);

/// Who a domain is in its system: its id and the domains it may call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DomainIdentity {
    /// The domain's id (0 outside a system).
    pub id: DomainId,
    /// The domains it may send requests to, with their names (at most `PEERS_MAX`,
    /// names of at most `PEER_NAME_MAX` bytes; longer ones are cut).
    pub peers: Vec<(DomainId, String)>,
}

/// Writes GDT, TSS, IDT, page tables and boot info into a fresh domain's memory.
/// `exception_stubs` is the image's stub table (0: no IDT, exceptions triple-fault).
pub fn write_boot_structures(
    memory: &DomainMemory,
    domain_name: &str,
    identity: &DomainIdentity,
    free_memory_start: u64,
    exception_stubs: u64,
) -> Result<(), GuestMemoryError> {
    let identity = BootIdentity {
        name: domain_name,
        identity,
        free_memory_start,
        process_control: 0,
    };
    let mem = memory.guest();
    mem.write_slice(gdt_entries().as_bytes(), GuestAddress(GDT_ADDR))?;
    write_tss(memory)?;
    if exception_stubs != 0 {
        let idt: Vec<u64> = (0..EXCEPTION_VECTORS)
            .flat_map(|vector| gate(exception_stubs + vector * EXCEPTION_STUB_SIZE))
            .collect();
        mem.write_slice(idt.as_bytes(), GuestAddress(IDT_ADDR))?;
    }
    write_page_tables(memory)?;
    write_boot_info(memory, &identity, BOOT_INFO_ADDR)
}

/// What a domain's boot information says about it.
pub struct BootIdentity<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its id and peers.
    pub identity: &'a DomainIdentity,
    /// The first byte after its image.
    pub free_memory_start: u64,
    /// Its control page, for a process domain (0 in a VM).
    pub process_control: u64,
}

/// Writes the boot information of a domain at `at` (a VM's is at `BOOT_INFO_ADDR`, a
/// process domain's at `abi::process::BOOT_INFO_ADDR`).
pub fn write_boot_info(
    memory: &DomainMemory,
    boot: &BootIdentity<'_>,
    at: u64,
) -> Result<(), GuestMemoryError> {
    let (domain_name, identity, free_memory_start) =
        (boot.name, boot.identity, boot.free_memory_start);
    let mem = memory.guest();
    let mut name = [0u8; DOMAIN_NAME_MAX];
    let name_len = domain_name.len().min(DOMAIN_NAME_MAX);
    name[..name_len].copy_from_slice(&domain_name.as_bytes()[..name_len]);
    let mut peers = [Peer::default(); PEERS_MAX];
    for (slot, (id, peer_name)) in peers.iter_mut().zip(&identity.peers) {
        let len = peer_name.len().min(PEER_NAME_MAX);
        slot.id = *id;
        slot.name_len = u32::try_from(len).expect("at most PEER_NAME_MAX");
        slot.name[..len].copy_from_slice(&peer_name.as_bytes()[..len]);
    }
    let info = BootInfo {
        magic: BOOT_INFO_MAGIC,
        abi_version: ABI_VERSION,
        name_len: u32::try_from(name_len).expect("at most DOMAIN_NAME_MAX"),
        memory_size: memory.size(),
        free_memory_start: free_memory_start.next_multiple_of(PAGE_SIZE),
        name,
        domain_id: identity.id,
        peer_count: u32::try_from(identity.peers.len().min(PEERS_MAX)).expect("small"),
        peers,
        process_control: boot.process_control,
    };
    mem.write_slice(info.as_bytes(), GuestAddress(at))
}

fn gdt_entries() -> [u64; GDT_ENTRIES] {
    let tss_low = (TSS_LIMIT & 0xffff)
        | ((TSS_ADDR & 0xff_ffff) << 16)
        | (u64::from(TSS_TYPE_BUSY) << 40)
        | (1 << 47)
        | (((TSS_LIMIT >> 16) & 0xf) << 48)
        | (((TSS_ADDR >> 24) & 0xff) << 56);
    let tss_high = TSS_ADDR >> 32;
    [
        0,
        CODE64_DESCRIPTOR,
        DATA_DESCRIPTOR,
        0,
        USER_DATA_DESCRIPTOR,
        USER_CODE64_DESCRIPTOR,
        tss_low,
        tss_high,
    ]
}

/// The TSS: IST1 on the exception stack, and an I/O bitmap that lets user mode use the
/// hypercall ports and no other port.
fn write_tss(memory: &DomainMemory) -> Result<(), GuestMemoryError> {
    let mem = memory.guest();
    mem.write_obj(
        EXCEPTION_STACK_TOP,
        GuestAddress(TSS_ADDR + TSS_IST1_OFFSET),
    )?;
    let iomap_base = u16::try_from(TSS_SIZE).expect("the TSS is small");
    mem.write_obj(iomap_base, GuestAddress(TSS_ADDR + TSS_IOMAP_OFFSET))?;
    let mut bitmap = vec![0xffu8; usize::try_from(IOMAP_LEN + 1).expect("small")];
    for port in HYPERCALL_PORT_BASE..HYPERCALL_PORT_END {
        bitmap[usize::from(port / 8)] &= !(1 << (port % 8));
    }
    mem.write_slice(&bitmap, GuestAddress(TSS_ADDR + TSS_SIZE))
}

/// A 64-bit interrupt gate to `handler` in the supervisor code segment, on IST1.
fn gate(handler: u64) -> [u64; 2] {
    let low = (handler & 0xffff)
        | (u64::from(CODE64_SELECTOR) << 16)
        | (GATE_IST << 32)
        | (INTERRUPT_GATE << 40)
        | (((handler >> 16) & 0xffff) << 48);
    [low, handler >> 32]
}

/// Identity map of the first [`IDENTITY_MAP_SIZE`] bytes: 4 KiB pages for the first
/// 2 MiB (null page absent, VMM structures supervisor-only), 2 MiB pages above.
fn write_page_tables(memory: &DomainMemory) -> Result<(), GuestMemoryError> {
    let mem = memory.guest();
    let table_flags = PTE_PRESENT | PTE_WRITABLE | PTE_USER | PTE_ACCESSED;
    let directory_span = HUGE_PAGE_SIZE * ENTRIES_PER_TABLE as u64;
    let directories = IDENTITY_MAP_SIZE / directory_span;
    mem.write_obj(PDPT_ADDR | table_flags, GuestAddress(PML4_ADDR))?;
    let mut table = [0u64; ENTRIES_PER_TABLE];
    for dir in 0..directories {
        let pd_addr = PD_ADDR + dir * PAGE_SIZE;
        mem.write_obj(pd_addr | table_flags, GuestAddress(PDPT_ADDR + dir * 8))?;
        let mut addr = dir * directory_span;
        for entry in table.iter_mut() {
            *entry = addr | table_flags | PTE_HUGE;
            addr += HUGE_PAGE_SIZE;
        }
        if dir == 0 {
            table[0] = PT_LOW_ADDR | table_flags;
        }
        mem.write_slice(table.as_bytes(), GuestAddress(pd_addr))?;
    }
    for (addr, entry) in (0..).map(|page| page * PAGE_SIZE).zip(table.iter_mut()) {
        *entry = match addr {
            0 => 0,
            BOOT_INFO_ADDR => addr | PTE_PRESENT | PTE_USER | PTE_ACCESSED,
            _ if addr < SUPERVISOR_AREA_END => addr | PTE_PRESENT | PTE_WRITABLE | PTE_ACCESSED,
            _ => addr | table_flags,
        };
    }
    mem.write_slice(table.as_bytes(), GuestAddress(PT_LOW_ADDR))
}

/// Maps the device window of a domain that owns a device: one uncached 2 MiB page at
/// [`DEVICE_WINDOW_BASE`], user-accessible, through the page directory at
/// [`DEVICE_PD_ADDR`]. Domains without a device never get it: an access there is a
/// page fault in the guest. No RAM backs it, so every access is an MMIO exit.
pub fn map_device_window(memory: &DomainMemory) -> Result<(), GuestMemoryError> {
    let mem = memory.guest();
    let table_flags = PTE_PRESENT | PTE_WRITABLE | PTE_USER | PTE_ACCESSED;
    let pdpt_slot = DEVICE_WINDOW_BASE / DIRECTORY_SPAN;
    let pd_slot = (DEVICE_WINDOW_BASE % DIRECTORY_SPAN) / HUGE_PAGE_SIZE;
    mem.write_obj(
        DEVICE_PD_ADDR | table_flags,
        GuestAddress(PDPT_ADDR + pdpt_slot * 8),
    )?;
    let page = DEVICE_WINDOW_BASE | table_flags | PTE_HUGE | PTE_WRITE_THROUGH | PTE_CACHE_DISABLE;
    mem.write_obj(page, GuestAddress(DEVICE_PD_ADDR + pd_slot * 8))
}

/// Sets the special registers for 64-bit mode with the VMM's GDT, IDT, TSS and page
/// tables; the code and stack segments are those of `mode`.
pub fn long_mode_sregs(mut sregs: kvm_sregs, mode: GuestMode, has_idt: bool) -> kvm_sregs {
    let kernel_code = kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector: CODE64_SELECTOR,
        type_: 0xb,
        present: 1,
        dpl: 0,
        db: 0,
        s: 1,
        l: 1,
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    };
    let kernel_data = kvm_segment {
        selector: DATA_SELECTOR,
        type_: 0x3,
        db: 1,
        l: 0,
        ..kernel_code
    };
    let (code, data) = match mode {
        GuestMode::Kernel => (kernel_code, kernel_data),
        GuestMode::User => (
            kvm_segment {
                selector: USER_CODE64_SELECTOR,
                dpl: 3,
                ..kernel_code
            },
            kvm_segment {
                selector: USER_DATA_SELECTOR,
                dpl: 3,
                ..kernel_data
            },
        ),
    };
    sregs.cs = code;
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = kvm_segment {
        base: TSS_ADDR,
        limit: u32::try_from(TSS_LIMIT).expect("small"),
        selector: TSS_SELECTOR,
        type_: TSS_TYPE_BUSY,
        s: 0,
        db: 0,
        l: 0,
        g: 0,
        ..kernel_code
    };
    sregs.gdt.base = GDT_ADDR;
    sregs.gdt.limit = u16::try_from(GDT_ENTRIES * 8 - 1).expect("small");
    sregs.idt.base = IDT_ADDR;
    sregs.idt.limit = match has_idt {
        true => u16::try_from(EXCEPTION_VECTORS * 16 - 1).expect("small"),
        false => 0,
    };
    sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
    sregs.cr3 = PML4_ADDR;
    sregs.cr4 = CR4_PAE;
    sregs.efer = EFER_LME | EFER_LMA;
    sregs
}

/// General registers at the entry point: `rdi` points at the boot information. The
/// runtime sets its own stack first thing; until then `rsp` is 0, so any push faults.
pub fn entry_regs(entry: u64) -> kvm_regs {
    kvm_regs {
        rip: entry,
        rdi: BOOT_INFO_ADDR,
        rflags: RFLAGS_RESERVED,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
