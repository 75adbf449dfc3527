//! The seccomp program of a process domain, compiled with `seccompiler`: after its
//! setup, the tender may only wait on and wake a futex (its handover with the VMM) and
//! return from a signal handler. Any other system call traps (SIGSYS), which the
//! tender reports as a [`DomainFault::ForbiddenSyscall`](crate::fault::DomainFault).

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// Why the filter could not be built (a bug of this file, reported as a host error).
#[derive(Debug, thiserror::Error)]
#[error("building the process domains' seccomp filter: {0}")]
pub struct FilterError(String);

/// The program, as the bytes of its `sock_filter` array.
pub fn program() -> Result<Vec<u8>, FilterError> {
    let futex_op = |op: u64| {
        SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, op)
            .and_then(|condition| SeccompRule::new(vec![condition]))
            .map_err(|err| FilterError(err.to_string()))
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
        let bytes = program().unwrap();
        assert_eq!(bytes.len() % 8, 0);
        let instructions = bytes.len() as u64 / 8;
        assert!(instructions > 0);
        assert!(instructions <= virtio_seep::abi::process::FILTER_MAX);
    }
}
