//! Random request sequences never panic and keep the table consistent.

use std::collections::BTreeMap;

use ankh_proto::opcode::*;
use ankh_proto::pm::{PidRecord, Spawn, Wait, PROC_MAX};
use ankh_proto::server::{Handled, Reply};
use ankh_proto::sys::DomainExited;
use ankh_proto::wire;
use proptest::prelude::*;

use super::Fixture;
use crate::table::State;

/// One thing that happens to PM; pids are picked among the first few domains.
#[derive(Clone, Debug)]
enum Op {
    Spawn {
        source: u32,
        path: usize,
        args: Vec<String>,
        flags: u32,
    },
    Wait {
        source: u32,
        target: i32,
    },
    Exit {
        source: u32,
        pid: u32,
        code: i32,
        cause: u32,
    },
    Kill {
        source: u32,
        pid: u32,
    },
    Query {
        source: u32,
        opcode: u16,
    },
    Raw {
        source: u32,
        opcode: u16,
        payload: Vec<u8>,
        bulk: Vec<u8>,
    },
    /// The next call with this opcode fails.
    Fail {
        opcode: u16,
        status: i32,
    },
}

const PATHS: [&str; 5] = ["/bin/sh", "/bin/hello", "/etc/motd", "/bin", "/nope"];
const CALLED: [u16; 8] = [
    VFS_PREAD_PATH,
    SYS_CREATE_DOMAIN,
    SYS_KILL_DOMAIN,
    VFS_PROC_SPAWN,
    MM_PROC_SPAWN,
    DS_PROC_SPAWN,
    VFS_PROC_EXIT,
    DS_PUBLISH,
];

/// Mostly init and the first children (the fake VMM numbers them from 10).
fn pid() -> impl Strategy<Value = u32> {
    prop_oneof![
        6 => prop::sample::select(vec![1u32, 10, 11, 12, 13, 14]),
        2 => 0u32..20,
        1 => any::<u32>(),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (pid(), 0..PATHS.len(), prop::collection::vec("[a-z]{0,3}", 0..3), 0u32..3)
            .prop_map(|(source, path, args, flags)| Op::Spawn { source, path, args, flags }),
        3 => (pid(), prop_oneof![2 => Just(-1), 1 => -3i32..20])
            .prop_map(|(source, target)| Op::Wait { source, target }),
        3 => (prop_oneof![4 => Just(0u32), 1 => pid()], pid(), any::<i32>(), 0u32..4)
            .prop_map(|(source, pid, code, cause)| Op::Exit { source, pid, code, cause }),
        1 => (pid(), pid()).prop_map(|(source, pid)| Op::Kill { source, pid }),
        1 => (pid(), prop::sample::select(vec![PM_GETPID, PM_GETPPID, PM_PS]))
            .prop_map(|(source, opcode)| Op::Query { source, opcode }),
        1 => (pid(), any::<u16>(), prop::collection::vec(any::<u8>(), 0..24),
              prop::collection::vec(any::<u8>(), 0..24))
            .prop_map(|(source, opcode, payload, bulk)| Op::Raw { source, opcode, payload, bulk }),
        1 => (prop::sample::select(CALLED.to_vec()), 1i32..40)
            .prop_map(|(opcode, status)| Op::Fail { opcode, status }),
    ]
}

/// The source and opcode of a request op.
fn sent(op: &Op) -> (u32, u16) {
    match op {
        Op::Spawn { source, .. } => (*source, PM_SPAWN),
        Op::Wait { source, .. } => (*source, PM_WAIT),
        Op::Exit { source, .. } => (*source, SYS_DOMAIN_EXITED),
        Op::Kill { source, .. } => (*source, PM_KILL),
        Op::Query { source, opcode } | Op::Raw { source, opcode, .. } => (*source, *opcode),
        Op::Fail { opcode, .. } => (0, *opcode),
    }
}

fn apply(f: &mut Fixture, op: &Op) -> Option<(Handled, u64)> {
    Some(match op {
        Op::Spawn {
            source,
            path,
            args,
            flags,
        } => {
            let mut list = vec![PATHS[*path]];
            list.extend(args.iter().map(String::as_str));
            let spawn = wire::bytes(&Spawn {
                flags: *flags,
                reserved: 0,
            });
            f.send(*source, PM_SPAWN, &spawn, &wire::join(list))
        }
        Op::Wait { source, target } => {
            let wait = wire::bytes(&Wait {
                pid: *target,
                reserved: 0,
            });
            f.send(*source, PM_WAIT, &wait, &[])
        }
        Op::Exit {
            source,
            pid,
            code,
            cause,
        } => {
            let exit = wire::bytes(&DomainExited {
                id: *pid,
                code: *code,
                cause: *cause,
                reserved: 0,
            });
            (f.send_with_id(*source, SYS_DOMAIN_EXITED, 0, &exit, &[]), 0)
        }
        Op::Kill { source, pid } => {
            let record = wire::bytes(&PidRecord {
                pid: *pid,
                reserved: 0,
            });
            f.send(*source, PM_KILL, &record, &[])
        }
        Op::Query { source, opcode } => f.send(*source, *opcode, &[], &[]),
        Op::Raw {
            source,
            opcode,
            payload,
            bulk,
        } => f.send(*source, *opcode, payload, bulk),
        Op::Fail { opcode, status } => {
            f.world.script(*opcode, Ok(Reply::err(*status)));
            return None;
        }
    })
}

proptest! {
    #[test]
    fn random_requests_keep_the_table_consistent(ops in prop::collection::vec(op(), 0..120)) {
        let mut f = Fixture::new();
        let mut parked: BTreeMap<u64, u32> = BTreeMap::new();
        for op in &ops {
            let before = f.world.replies.len();
            if let Some((Handled::Deferred, id)) = apply(&mut f, op) {
                let (source, opcode) = sent(op);
                if opcode == PM_WAIT {
                    parked.insert(id, source);
                } else {
                    prop_assert_eq!(opcode, SYS_DOMAIN_EXITED, "only waits are parked");
                }
            }
            for (id, _) in &f.world.replies[before..] {
                prop_assert!(parked.remove(id).is_some(), "answered twice or never parked");
            }
            check(&f, &parked)?;
        }
    }
}

/// The table's invariants.
fn check(f: &Fixture, parked: &BTreeMap<u64, u32>) -> Result<(), TestCaseError> {
    let procs = &f.pm.procs;
    let entries = f.pm.entries();
    prop_assert!(entries.windows(2).all(|w| w[0].pid < w[1].pid));
    for (&pid, p) in procs {
        prop_assert!(pid != 0);
        if p.ppid != 0 {
            let parent = procs.get(&p.ppid);
            prop_assert!(
                parent.is_some_and(|q| q.is_running()),
                "{} has a dead parent",
                pid
            );
        } else {
            prop_assert!(p.is_running(), "a zombie nobody can reap");
        }
        if matches!(p.state, State::Zombie { .. }) {
            prop_assert!(!p.detached);
            prop_assert!(p.wait.is_none());
        }
        if let Some(wait) = p.wait {
            prop_assert_eq!(parked.get(&wait.request_id), Some(&pid));
            let ready = procs
                .iter()
                .any(|(&c, q)| !q.is_running() && q.is_waitable_by(c, pid, wait.target));
            prop_assert!(!ready, "a parked wait could be answered");
        }
    }
    let waits = procs.values().filter(|p| p.wait.is_some()).count();
    prop_assert_eq!(waits, parked.len());
    // Spawns stop at PROC_MAX; callers PM enters can add a few (sources below 20).
    prop_assert!(procs.len() <= PROC_MAX + 20);
    Ok(())
}
