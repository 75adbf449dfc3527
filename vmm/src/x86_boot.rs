//! Putting a fresh domain straight into 64-bit long mode: GDT, TSS, identity page
//! tables and boot information in guest memory, and the vCPU's registers.
//!
//! There is no firmware and no real mode: the VMM writes the structures described in
//! [`virtio_seep::abi::layout`] and sets CR0/CR4/EFER and the segment registers as a
//! long-mode kernel would have them, so the first instruction the guest runs is its
//! ELF entry point.

use kvm_bindings::{kvm_regs, kvm_segment, kvm_sregs};
use virtio_seep::abi::boot::{BootInfo, BOOT_INFO_MAGIC, DOMAIN_NAME_MAX};
use virtio_seep::abi::layout::{
    BOOT_INFO_ADDR, CODE64_SELECTOR, DATA_SELECTOR, EXCEPTION_STACK_BOTTOM, EXCEPTION_STACK_TOP,
    GDT_ADDR, IDENTITY_MAP_SIZE, PAGE_SIZE, PDPT_ADDR, PD_ADDR, PML4_ADDR, PT_LOW_ADDR, TSS_ADDR,
    TSS_SELECTOR,
};
use virtio_seep::abi::ABI_VERSION;
use vm_memory::{Bytes, GuestAddress, GuestMemoryError};
use zerocopy::IntoBytes;

use crate::memory::DomainMemory;

const CR0_PE: u64 = 1 << 0;
const CR0_MP: u64 = 1 << 1;
const CR0_ET: u64 = 1 << 4;
const CR0_NE: u64 = 1 << 5;
const CR0_WP: u64 = 1 << 16;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;

const PTE_PRESENT: u64 = 1 << 0;
const PTE_WRITABLE: u64 = 1 << 1;
const PTE_HUGE: u64 = 1 << 7;
const ENTRIES_PER_TABLE: u64 = 512;
const HUGE_PAGE_SIZE: u64 = 2 << 20;

/// Size of the 64-bit TSS.
const TSS_SIZE: u64 = 0x68;
/// Offset of IST1 inside the 64-bit TSS.
const TSS_IST1_OFFSET: u64 = 0x24;
/// Offset of the I/O map base inside the 64-bit TSS.
const TSS_IOMAP_OFFSET: u64 = 0x66;

/// GDT: null, 64-bit code, data, then the two-slot TSS descriptor.
const GDT_ENTRIES: usize = 5;
const CODE64_DESCRIPTOR: u64 = 0x00af_9b00_0000_ffff;
const DATA_DESCRIPTOR: u64 = 0x00cf_9300_0000_ffff;
/// Type of a busy 64-bit TSS, the state KVM expects TR to be in.
const TSS_TYPE_BUSY: u64 = 0xb;

/// Writes GDT, TSS, page tables and boot info into a fresh domain's memory.
pub fn write_boot_structures(
    memory: &DomainMemory,
    domain_name: &str,
    free_memory_start: u64,
) -> Result<(), GuestMemoryError> {
    let mem = memory.guest();
    let gdt = gdt_entries();
    for (i, entry) in gdt.iter().enumerate() {
        mem.write_obj(*entry, GuestAddress(GDT_ADDR + 8 * i as u64))?;
    }
    mem.write_obj(
        EXCEPTION_STACK_TOP,
        GuestAddress(TSS_ADDR + TSS_IST1_OFFSET),
    )?;
    // No I/O permission bitmap: the map base points past the TSS limit.
    mem.write_obj(TSS_SIZE as u16, GuestAddress(TSS_ADDR + TSS_IOMAP_OFFSET))?;
    write_page_tables(memory)?;

    let mut name = [0u8; DOMAIN_NAME_MAX];
    let name_len = domain_name.len().min(DOMAIN_NAME_MAX);
    name[..name_len].copy_from_slice(&domain_name.as_bytes()[..name_len]);
    let info = BootInfo {
        magic: BOOT_INFO_MAGIC,
        abi_version: ABI_VERSION,
        name_len: name_len as u32,
        memory_size: memory.size(),
        free_memory_start: free_memory_start.next_multiple_of(PAGE_SIZE),
        name,
    };
    mem.write_slice(info.as_bytes(), GuestAddress(BOOT_INFO_ADDR))
}

fn gdt_entries() -> [u64; GDT_ENTRIES] {
    let limit = TSS_SIZE - 1;
    let tss_low = (limit & 0xffff)
        | ((TSS_ADDR & 0xff_ffff) << 16)
        | (TSS_TYPE_BUSY << 40)
        | (1 << 47)
        | (((limit >> 16) & 0xf) << 48)
        | (((TSS_ADDR >> 24) & 0xff) << 56);
    let tss_high = TSS_ADDR >> 32;
    [0, CODE64_DESCRIPTOR, DATA_DESCRIPTOR, tss_low, tss_high]
}

/// Identity map of the first [`IDENTITY_MAP_SIZE`] bytes: 4 KiB pages (null page
/// absent) for the first 2 MiB, 2 MiB pages above.
fn write_page_tables(memory: &DomainMemory) -> Result<(), GuestMemoryError> {
    let mem = memory.guest();
    let directories = IDENTITY_MAP_SIZE / (HUGE_PAGE_SIZE * ENTRIES_PER_TABLE);
    mem.write_obj(
        PDPT_ADDR | PTE_PRESENT | PTE_WRITABLE,
        GuestAddress(PML4_ADDR),
    )?;
    let mut table = [0u64; ENTRIES_PER_TABLE as usize];
    for dir in 0..directories {
        let pd_addr = PD_ADDR + dir * PAGE_SIZE;
        mem.write_obj(
            pd_addr | PTE_PRESENT | PTE_WRITABLE,
            GuestAddress(PDPT_ADDR + dir * 8),
        )?;
        for (slot, entry) in table.iter_mut().enumerate() {
            let addr = (dir * ENTRIES_PER_TABLE + slot as u64) * HUGE_PAGE_SIZE;
            *entry = addr | PTE_PRESENT | PTE_WRITABLE | PTE_HUGE;
        }
        if dir == 0 {
            table[0] = PT_LOW_ADDR | PTE_PRESENT | PTE_WRITABLE;
        }
        mem.write_slice(table.as_bytes(), GuestAddress(pd_addr))?;
    }
    for (slot, entry) in table.iter_mut().enumerate() {
        // Slot 0 stays absent: the null page faults.
        *entry = match slot {
            0 => 0,
            _ => (slot as u64 * PAGE_SIZE) | PTE_PRESENT | PTE_WRITABLE,
        };
    }
    mem.write_slice(table.as_bytes(), GuestAddress(PT_LOW_ADDR))
}

/// Sets the special registers for 64-bit mode with the VMM's GDT, TSS and page tables.
pub fn long_mode_sregs(mut sregs: kvm_sregs) -> kvm_sregs {
    let code = kvm_segment {
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
    let data = kvm_segment {
        selector: DATA_SELECTOR,
        type_: 0x3,
        db: 1,
        l: 0,
        ..code
    };
    let tss = kvm_segment {
        base: TSS_ADDR,
        limit: (TSS_SIZE - 1) as u32,
        selector: TSS_SELECTOR,
        type_: TSS_TYPE_BUSY as u8,
        s: 0,
        db: 0,
        l: 0,
        g: 0,
        ..code
    };
    sregs.cs = code;
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = tss;
    sregs.gdt.base = GDT_ADDR;
    sregs.gdt.limit = (GDT_ENTRIES * 8 - 1) as u16;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
    sregs.cr3 = PML4_ADDR;
    sregs.cr4 = CR4_PAE;
    sregs.efer = EFER_LME | EFER_LMA;
    sregs
}

/// General registers at the entry point: `rdi` points at the boot information and a
/// temporary stack sits below the exception stack until the runtime sets its own.
pub fn entry_regs(entry: u64) -> kvm_regs {
    kvm_regs {
        rip: entry,
        rsp: EXCEPTION_STACK_BOTTOM,
        rdi: BOOT_INFO_ADDR,
        rflags: 0x2,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::FromBytes;

    fn read_u64(memory: &DomainMemory, addr: u64) -> u64 {
        memory.guest().read_obj(GuestAddress(addr)).unwrap()
    }

    /// Walks the page tables the way the MMU does and returns the physical address.
    fn translate(memory: &DomainMemory, vaddr: u64) -> Option<u64> {
        let pml4e = read_u64(memory, PML4_ADDR + ((vaddr >> 39) & 0x1ff) * 8);
        if pml4e & PTE_PRESENT == 0 {
            return None;
        }
        let pdpte = read_u64(memory, (pml4e & !0xfff) + ((vaddr >> 30) & 0x1ff) * 8);
        if pdpte & PTE_PRESENT == 0 {
            return None;
        }
        let pde = read_u64(memory, (pdpte & !0xfff) + ((vaddr >> 21) & 0x1ff) * 8);
        if pde & PTE_PRESENT == 0 {
            return None;
        }
        if pde & PTE_HUGE != 0 {
            return Some((pde & !0x1f_ffff) + (vaddr & 0x1f_ffff));
        }
        let pte = read_u64(memory, (pde & !0xfff) + ((vaddr >> 12) & 0x1ff) * 8);
        (pte & PTE_PRESENT != 0).then_some((pte & !0xfff) + (vaddr & 0xfff))
    }

    #[test]
    fn identity_map_covers_4_gib_except_the_null_page() {
        let memory = DomainMemory::new(4 << 20).unwrap();
        write_boot_structures(&memory, "test", 0x10_0000).unwrap();
        assert_eq!(translate(&memory, 0), None);
        assert_eq!(translate(&memory, 0xfff), None);
        for addr in [
            0x1000,
            0x1f_f008,
            0x20_0000,
            0x10_0123,
            0xd000_0000,
            0xffff_f000,
        ] {
            assert_eq!(translate(&memory, addr), Some(addr), "{addr:#x}");
        }
        assert_eq!(translate(&memory, IDENTITY_MAP_SIZE), None);
        assert_eq!(translate(&memory, 0x40_0000_0000), None);
    }

    #[test]
    fn boot_info_names_the_domain() {
        let memory = DomainMemory::new(4 << 20).unwrap();
        write_boot_structures(&memory, "vfs", 0x10_1234).unwrap();
        let mut bytes = [0u8; size_of::<BootInfo>()];
        memory
            .guest()
            .read_slice(&mut bytes, GuestAddress(BOOT_INFO_ADDR))
            .unwrap();
        let info = BootInfo::read_from_bytes(&bytes).unwrap();
        assert_eq!(info.magic, BOOT_INFO_MAGIC);
        assert_eq!(info.name(), "vfs");
        assert_eq!(info.memory_size, 4 << 20);
        assert_eq!(info.free_memory_start, 0x10_2000);
    }

    #[test]
    fn tss_descriptor_points_at_the_tss() {
        let [_, _, _, low, high] = gdt_entries();
        let base = ((low >> 16) & 0xff_ffff) | (((low >> 56) & 0xff) << 24) | (high << 32);
        assert_eq!(base, TSS_ADDR);
        assert_eq!(low & 0xffff, TSS_SIZE - 1);
    }
}
