//! `MM_BRK`, `MM_MAP`, `MM_UNMAP`, `MM_USAGE` and unknown opcodes.

use ankh_proto::errno::{EINVAL, ENOMEM, ENOSYS};
use ankh_proto::mm::{Brk, Region, Usage, PAGE, PROCESS_LIMIT, SYSTEM_BUDGET};
use ankh_proto::opcode::{MM_BRK, MM_UNMAP, MM_USAGE, PM_SPAWN};
use ankh_proto::wire;

use super::Fixture;
use crate::MemoryManager;

const MIB: u64 = 1 << 20;

fn brk(f: &mut Fixture, pid: u32, size: u64) -> Result<u64, i32> {
    let reply = f.ask(pid, MM_BRK, &wire::bytes(&Brk { size }));
    match reply.status {
        0 => Ok(wire::record::<Brk>(&reply.payload).unwrap().size),
        status => Err(status),
    }
}

fn usage(f: &mut Fixture, pid: u32) -> Usage {
    let reply = f.ask(pid, MM_USAGE, &[]);
    assert_eq!(reply.status, 0);
    wire::record(&reply.payload).unwrap()
}

fn unmap(f: &mut Fixture, pid: u32, region: Region) -> i32 {
    f.ask(pid, MM_UNMAP, &wire::bytes(&region)).status
}

#[test]
fn brk_grows_within_the_limit_and_always_shrinks() {
    let mut f = Fixture::new(MemoryManager::new(4 * MIB, 6 * MIB));
    assert_eq!(brk(&mut f, 5, MIB), Ok(MIB));
    assert_eq!(brk(&mut f, 5, 4 * MIB), Ok(4 * MIB));
    assert_eq!(brk(&mut f, 5, 4 * MIB + 1), Err(ENOMEM));
    assert_eq!(brk(&mut f, 5, u64::MAX), Err(ENOMEM));
    assert_eq!(f.mm.used(5), 4 * MIB);
    // Over the system budget, though within the process limit.
    assert_eq!(brk(&mut f, 6, 3 * MIB), Err(ENOMEM));
    assert_eq!(brk(&mut f, 6, 2 * MIB), Ok(2 * MIB));
    assert_eq!(f.mm.system_used(), 6 * MIB);
    // Shrinking works even with the system full, and frees for others.
    assert_eq!(brk(&mut f, 5, 1), Ok(1));
    assert_eq!(brk(&mut f, 6, 0), Ok(0));
    assert_eq!(f.mm.system_used(), 1);
    assert_eq!(brk(&mut f, 6, 4 * MIB), Ok(4 * MIB));
    assert!(f.kernel.calls.is_empty() && f.kernel.replies.is_empty());
}

#[test]
fn short_payloads_are_einval() {
    let mut f = Fixture::default();
    for opcode in [MM_BRK, ankh_proto::opcode::MM_MAP, MM_UNMAP] {
        assert_eq!(f.ask(5, opcode, &[1, 2, 3]).status, EINVAL);
    }
    assert_eq!(f.mm.system_used(), 0);
}

#[test]
fn map_rounds_to_pages_and_never_overlaps() {
    let mut f = Fixture::default();
    let a = f.map(5, 1).unwrap();
    let b = f.map(5, PAGE + 1).unwrap();
    let c = f.map(5, PAGE).unwrap();
    assert_eq!((a.len, b.len, c.len), (PAGE, 2 * PAGE, PAGE));
    let mut regions = f.mm.regions(5);
    assert_eq!(regions, [a, b, c]);
    regions.sort_by_key(|r| r.addr);
    for pair in regions.windows(2) {
        assert!(pair[0].addr + pair[0].len <= pair[1].addr);
    }
    assert!(regions.iter().all(|r| r.addr % PAGE == 0 && r.addr != 0));
    assert_eq!(f.mm.used(5), 4 * PAGE);
    // Handles are fresh: an unmapped one is not handed out again.
    assert_eq!(unmap(&mut f, 5, a), 0);
    let d = f.map(5, 1).unwrap();
    assert_ne!(d.addr, a.addr);
}

#[test]
fn map_errors() {
    let mut f = Fixture::new(MemoryManager::new(2 * PAGE, 3 * PAGE));
    assert_eq!(f.map(5, 0), Err(EINVAL));
    assert_eq!(f.map(5, u64::MAX), Err(ENOMEM));
    assert_eq!(f.map(5, 2 * PAGE + 1), Err(ENOMEM));
    f.map(5, 2 * PAGE).unwrap();
    assert_eq!(f.map(5, 1), Err(ENOMEM), "over the process limit");
    f.map(6, PAGE).unwrap();
    assert_eq!(f.map(7, 1), Err(ENOMEM), "over the system budget");
    assert_eq!(f.mm.system_used(), 3 * PAGE);
}

#[test]
fn the_handle_space_can_run_out() {
    let mut f = Fixture::new(MemoryManager::new(u64::MAX, u64::MAX));
    let half = 1 << 63;
    f.map(5, half).unwrap();
    assert_eq!(f.map(5, half - PAGE), Err(ENOMEM));
    assert_eq!(f.mm.used(5), half);
    assert_eq!(f.mm.system_used(), half);
}

#[test]
fn unmap_needs_the_exact_region() {
    let mut f = Fixture::default();
    let region = f.map(5, 3 * PAGE).unwrap();
    let wrong = [
        Region {
            addr: region.addr + PAGE,
            ..region
        },
        Region {
            len: PAGE,
            ..region
        },
        Region {
            len: 3 * PAGE - 1,
            ..region
        },
        Region { addr: 0, len: 0 },
    ];
    for other in wrong {
        assert_eq!(unmap(&mut f, 5, other), EINVAL, "{other:?}");
    }
    assert_eq!(unmap(&mut f, 6, region), EINVAL, "another process's region");
    assert_eq!(unmap(&mut f, 5, region), 0);
    assert_eq!(unmap(&mut f, 5, region), EINVAL, "twice");
    assert_eq!(f.mm.used(5), 0);
    assert_eq!(f.mm.system_used(), 0);
}

#[test]
fn usage_reports_the_caller_and_the_system_without_changing_anything() {
    let mut f = Fixture::default();
    assert_eq!(
        usage(&mut f, 9),
        Usage {
            used: 0,
            limit: PROCESS_LIMIT,
            system_used: 0,
            system_budget: SYSTEM_BUDGET,
        }
    );
    assert!(f.mm.accounts.is_empty(), "a query made an account");
    assert_eq!(brk(&mut f, 5, 100), Ok(100));
    f.map(5, 1).unwrap();
    f.map(6, 1).unwrap();
    let got = usage(&mut f, 5);
    assert_eq!((got.used, got.system_used), (100 + PAGE, 100 + 2 * PAGE));
    assert_eq!(usage(&mut f, 6).used, PAGE);
}

#[test]
fn unknown_opcodes_are_enosys() {
    let mut f = Fixture::default();
    assert_eq!(f.ask(5, PM_SPAWN, &[]).status, ENOSYS);
    assert_eq!(f.ask(5, 0xffff, &[]).status, ENOSYS);
}
