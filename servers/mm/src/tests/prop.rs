//! Random request sequences never panic and keep the accounting consistent.

use ankh_proto::mm::{Brk, Region, PAGE};
use ankh_proto::opcode::{MM_BRK, MM_MAP, MM_PROC_EXIT, MM_PROC_SPAWN, MM_UNMAP, MM_USAGE};
use ankh_proto::vfs::{ProcExit, ProcSpawn};
use ankh_proto::wire;
use proptest::prelude::*;

use super::Fixture;
use crate::MemoryManager;

/// One request: a source and what it sends.
#[derive(Clone, Debug)]
enum Op {
    Brk(u64),
    Map(u64),
    /// Unmap the n-th region of the source (or a made-up one when there is none).
    Unmap(usize, bool),
    Usage,
    Spawn(u32),
    Exit(u32),
    Raw(u16, Vec<u8>),
}

fn size() -> impl Strategy<Value = u64> {
    prop_oneof![0..4 * PAGE, 0..(1u64 << 22), any::<u64>()]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        size().prop_map(Op::Brk),
        size().prop_map(Op::Map),
        (any::<usize>(), any::<bool>()).prop_map(|(n, exact)| Op::Unmap(n, exact)),
        Just(Op::Usage),
        (1u32..5).prop_map(Op::Spawn),
        (1u32..5).prop_map(Op::Exit),
        (any::<u16>(), prop::collection::vec(any::<u8>(), 0..40)).prop_map(|(o, p)| Op::Raw(o, p)),
    ]
}

fn payload(f: &Fixture, source: u32, op: &Op) -> (u16, Vec<u8>) {
    match op {
        Op::Brk(size) => (MM_BRK, wire::bytes(&Brk { size: *size })),
        Op::Map(len) => (MM_MAP, wire::bytes(&Region { addr: 0, len: *len })),
        Op::Unmap(n, exact) => {
            let regions = f.mm.regions(source);
            let mut region = regions
                .get(n % regions.len().max(1))
                .copied()
                .unwrap_or_default();
            if !exact {
                region.len = region.len.wrapping_add(PAGE);
            }
            (MM_UNMAP, wire::bytes(&region))
        }
        Op::Usage => (MM_USAGE, Vec::new()),
        Op::Spawn(child) => (
            MM_PROC_SPAWN,
            wire::bytes(&ProcSpawn {
                child: *child,
                parent: source,
                flags: 0,
                reserved: 0,
            }),
        ),
        Op::Exit(pid) => (
            MM_PROC_EXIT,
            wire::bytes(&ProcExit {
                pid: *pid,
                reserved: 0,
            }),
        ),
        Op::Raw(opcode, bytes) => (*opcode, bytes.clone()),
    }
}

proptest! {
    #[test]
    fn random_requests_keep_the_books_balanced(
        limit in 1u64..(1 << 23),
        budget in 1u64..(1 << 24),
        ops in prop::collection::vec((1u32..5, op()), 0..150),
    ) {
        let mut f = Fixture::new(MemoryManager::new(limit, budget));
        for (source, op) in &ops {
            let (opcode, bytes) = payload(&f, *source, op);
            let _ = f.ask(*source, opcode, &bytes);
            let mut total = 0;
            for pid in 1..5 {
                let used = f.mm.used(pid);
                prop_assert!(used <= limit);
                let regions = f.mm.regions(pid);
                for pair in regions.windows(2) {
                    prop_assert!(pair[0].addr + pair[0].len <= pair[1].addr);
                }
                total += used;
            }
            prop_assert_eq!(total, f.mm.system_used());
            prop_assert!(total <= budget);
        }
        prop_assert!(f.kernel.calls.is_empty() && f.kernel.replies.is_empty());
    }
}
