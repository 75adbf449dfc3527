//! The boot structures, checked by walking them as the CPU would.

use zerocopy::FromBytes;

use super::*;

fn read_u64(memory: &DomainMemory, addr: u64) -> u64 {
    memory.guest().read_obj(GuestAddress(addr)).unwrap()
}

fn booted() -> DomainMemory {
    let memory = DomainMemory::new(4 << 20).unwrap();
    let identity = DomainIdentity {
        id: 3,
        peers: vec![(1, "vfs".into()), (2, "a-very-long-peer-name".into())],
    };
    write_boot_structures(&memory, "test", &identity, 0x10_1234, 0x10_0100).unwrap();
    memory
}

/// Walks the page tables like the MMU: the physical address and whether user mode may
/// access it.
fn translate(memory: &DomainMemory, vaddr: u64) -> Option<(u64, bool)> {
    let mut table = PML4_ADDR;
    let mut user = true;
    for shift in [39, 30, 21, 12] {
        let entry = read_u64(memory, table + ((vaddr >> shift) & 0x1ff) * 8);
        if entry & PTE_PRESENT == 0 {
            return None;
        }
        user &= entry & PTE_USER != 0;
        if shift == 21 && entry & PTE_HUGE != 0 {
            return Some((
                (entry & !0x1f_ffff & !(1 << 63)) + (vaddr & 0x1f_ffff),
                user,
            ));
        }
        table = entry & 0x000f_ffff_ffff_f000;
    }
    Some((table + (vaddr & 0xfff), user))
}

#[test]
fn identity_map_covers_4_gib_except_the_null_page() {
    let memory = booted();
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
        assert_eq!(
            translate(&memory, addr).map(|(a, _)| a),
            Some(addr),
            "{addr:#x}"
        );
    }
    assert_eq!(translate(&memory, IDENTITY_MAP_SIZE), None);
    assert_eq!(translate(&memory, 0x40_0000_0000), None);
}

#[test]
fn vmm_structures_are_out_of_user_reach() {
    let memory = booted();
    for addr in [
        GDT_ADDR,
        TSS_ADDR,
        PML4_ADDR,
        PT_LOW_ADDR,
        IDT_ADDR,
        EXCEPTION_STACK_BOTTOM,
    ] {
        assert_eq!(
            translate(&memory, addr).map(|(_, user)| user),
            Some(false),
            "{addr:#x}"
        );
    }
    for addr in [BOOT_INFO_ADDR, 0x10_0000, 0x30_0000, 0xd000_0000] {
        assert_eq!(
            translate(&memory, addr).map(|(_, user)| user),
            Some(true),
            "{addr:#x}"
        );
    }
}

#[test]
fn boot_info_names_the_domain() {
    let memory = booted();
    let mut bytes = [0u8; size_of::<BootInfo>()];
    memory
        .guest()
        .read_slice(&mut bytes, GuestAddress(BOOT_INFO_ADDR))
        .unwrap();
    let info = BootInfo::read_from_bytes(&bytes).unwrap();
    assert_eq!(info.magic, BOOT_INFO_MAGIC);
    assert_eq!(info.name(), "test");
    assert_eq!(info.memory_size, 4 << 20);
    assert_eq!(info.free_memory_start, 0x10_2000);
    assert_eq!(info.domain_id, 3);
    assert_eq!(info.peer("vfs"), Some(1));
    assert_eq!(
        info.peer("a-very-long-peer"),
        Some(2),
        "names are cut at 16 bytes"
    );
    assert_eq!(info.peer("pm"), None);
}

#[test]
fn tss_descriptor_points_at_the_tss() {
    let gdt = gdt_entries();
    let slot = usize::from(TSS_SELECTOR / 8);
    let (low, high) = (gdt[slot], gdt[slot + 1]);
    let base = ((low >> 16) & 0xff_ffff) | (((low >> 56) & 0xff) << 24) | (high << 32);
    assert_eq!(base, TSS_ADDR);
    assert_eq!(low & 0xffff, TSS_LIMIT);
}

#[test]
fn io_bitmap_allows_exactly_the_hypercall_ports() {
    let memory = booted();
    let base: u16 = memory
        .guest()
        .read_obj(GuestAddress(TSS_ADDR + TSS_IOMAP_OFFSET))
        .unwrap();
    let allowed = |port: u16| {
        let offset = u64::from(base) + u64::from(port / 8);
        if offset > TSS_LIMIT {
            return false;
        }
        let byte: u8 = memory
            .guest()
            .read_obj(GuestAddress(TSS_ADDR + offset))
            .unwrap();
        byte & (1 << (port % 8)) == 0
    };
    let hypercalls = HYPERCALL_PORT_BASE..HYPERCALL_PORT_END;
    for port in 0..=u16::MAX {
        assert_eq!(allowed(port), hypercalls.contains(&port), "port {port:#x}");
    }
}

#[test]
fn idt_gates_point_at_consecutive_stubs() {
    let memory = booted();
    for vector in [0u64, 6, 14, 255] {
        let low = read_u64(&memory, IDT_ADDR + vector * 16);
        let high = read_u64(&memory, IDT_ADDR + vector * 16 + 8);
        let handler = (low & 0xffff) | ((low >> 48) << 16) | (high << 32);
        assert_eq!(handler, 0x10_0100 + vector * EXCEPTION_STUB_SIZE);
        assert_eq!((low >> 16) & 0xffff, u64::from(CODE64_SELECTOR));
        assert_eq!((low >> 32) & 0x7, GATE_IST);
        assert_eq!((low >> 40) & 0xff, INTERRUPT_GATE);
    }
}

#[test]
fn every_entry_is_already_accessed_and_no_leaf_dirty() {
    // Accessed: the walker would otherwise write it into the tables (guest writes the
    // dirty log reports and checkpoints copy). Not dirty: see `PTE_ACCESSED`.
    let memory = booted();
    map_device_window(&memory).unwrap();
    let mut leaves = 0;
    let mut tables = vec![(PML4_ADDR, 39)];
    while let Some((table, shift)) = tables.pop() {
        for index in 0..ENTRIES_PER_TABLE as u64 {
            let entry = read_u64(&memory, table + index * 8);
            if entry & PTE_PRESENT == 0 {
                continue;
            }
            assert_ne!(entry & PTE_ACCESSED, 0, "{entry:#x} at {table:#x}[{index}]");
            if shift == 12 || (shift == 21 && entry & PTE_HUGE != 0) {
                assert_eq!(
                    entry & (1 << 6),
                    0,
                    "dirty: {entry:#x} at {table:#x}[{index}]"
                );
                leaves += 1;
            } else {
                tables.push((entry & 0x000f_ffff_ffff_f000, shift - 9));
            }
        }
    }
    assert!(leaves > 512, "{leaves} leaves");
}
