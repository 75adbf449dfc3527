//! The seccomp program of a process domain, compiled with `seccompiler`: after its
//! setup, the tender may only wait on and wake a futex (its handover with the VMM),
//! return from a signal handler and, in a domain whose writes are tracked, make pages
//! of guest RAM read-only or writable (both executable, as guest RAM always is: see
//! `track`). Any other system call traps (SIGSYS), which the
//! tender reports as a [`DomainFault::ForbiddenSyscall`](crate::fault::DomainFault).

use std::collections::BTreeMap;

use virtio_seep::abi::process::RAM_START;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Why the filter could not be built (a bug of this file, reported as a host error).
#[derive(Debug, thiserror::Error)]
#[error("building the process domains' seccomp filter: {0}")]
pub struct FilterError(String);

/// The program, as the bytes of its `sock_filter` array. `tracked_memory`: the size
/// of guest RAM of a domain whose writes are tracked (which needs `mprotect`).
pub fn program(tracked_memory: Option<u64>) -> Result<Vec<u8>, FilterError> {
    let condition = |arg: u8, len: SeccompCmpArgLen, op: SeccompCmpOp, value: u64| {
        SeccompCondition::new(arg, len, op, value).map_err(|err| FilterError(err.to_string()))
    };
    let rule =
        |conditions| SeccompRule::new(conditions).map_err(|err| FilterError(err.to_string()));
    let futex_op = |op: u64| {
        rule(vec![condition(
            1,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Eq,
            op,
        )?])
    };
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    rules.insert(
        libc::SYS_futex,
        vec![
            futex_op(libc::FUTEX_WAIT as u64)?,
            futex_op(libc::FUTEX_WAKE as u64)?,
        ],
    );
    // An empty rule list allows the call whatever its arguments.
    rules.insert(libc::SYS_rt_sigreturn, Vec::new());
    if let Some(memory_size) = tracked_memory {
        // mprotect(start, len, prot): start inside guest RAM, len at most all of it
        // (a range running past RAM stops at the unmapped gap before the tender), and
        // only the two protections of tracked guest RAM.
        let range = || -> Result<Vec<SeccompCondition>, FilterError> {
            Ok(vec![
                condition(0, SeccompCmpArgLen::Qword, SeccompCmpOp::Ge, RAM_START)?,
                condition(0, SeccompCmpArgLen::Qword, SeccompCmpOp::Lt, memory_size)?,
                condition(1, SeccompCmpArgLen::Qword, SeccompCmpOp::Le, memory_size)?,
            ])
        };
        let protection = |prot: libc::c_int| -> Result<SeccompRule, FilterError> {
            let mut conditions = range()?;
            conditions.push(condition(
                2,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::Eq,
                u64::try_from(prot).expect("positive"),
            )?);
            rule(conditions)
        };
        rules.insert(
            libc::SYS_mprotect,
            vec![
                protection(libc::PROT_READ | libc::PROT_EXEC)?,
                protection(libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC)?,
            ],
        );
    }
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Trap,
        SeccompAction::Allow,
        TargetArch::x86_64,
    )
    .map_err(|err| FilterError(err.to_string()))?;
    let program: BpfProgram = filter
        .try_into()
        .map_err(|err: seccompiler::BackendError| FilterError(err.to_string()))?;
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for instruction in program {
        bytes.extend_from_slice(&instruction.code.to_le_bytes());
        bytes.push(instruction.jt);
        bytes.push(instruction.jf);
        bytes.extend_from_slice(&instruction.k.to_le_bytes());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_fits_the_control_memfd() {
        let bytes = program(Some(virtio_seep::abi::layout::MAX_MEMORY_SIZE)).unwrap();
        assert_eq!(bytes.len() % 8, 0);
        let instructions = bytes.len() as u64 / 8;
        assert!(instructions > 0);
        assert!(instructions <= virtio_seep::abi::process::FILTER_MAX);
    }
}
