//! Calling other servers: statuses as errors, and publishing to DS.

use alloc::vec::Vec;

use ankh_proto::opcode::DS_PUBLISH;
use ankh_proto::pm::DS_KEY_PROCESSES;
use ankh_proto::server::{Endpoint, Kernel};

pub(crate) use ankh_proto::server::{call_checked as call, call_retrying};

/// Appends `n` in decimal (no `core::fmt`: its integer formatting is not SSE-free).
pub(crate) fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        // `n % 10` is a digit.
        digits[start] = b'0' + u8::try_from(n % 10).unwrap_or(0);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// Publishes the number of live processes to DS (best effort: DS's errors do not
/// concern the process table; a rolled-back DS gets it again).
pub(crate) fn publish_processes(kernel: &mut dyn Kernel, live: usize) {
    let mut bulk = Vec::with_capacity(DS_KEY_PROCESSES.len() + 8);
    bulk.extend_from_slice(DS_KEY_PROCESSES.as_bytes());
    bulk.push(0);
    push_decimal(&mut bulk, u64::try_from(live).unwrap_or(u64::MAX));
    bulk.push(0);
    let _ = call_retrying(kernel, Endpoint::Ds, DS_PUBLISH, &[], &bulk);
}
