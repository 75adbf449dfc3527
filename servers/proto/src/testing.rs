//! Test support for server crates (feature `testing`): a kernel that records what a
//! server asks of it.

use alloc::vec::Vec;

use crate::errno::{self, Errno};
use crate::server::{Endpoint, Kernel, Reply};

/// A kernel that records every call (answering `ENOSYS`: for servers that call
/// nobody) and every deferred reply.
#[derive(Debug, Default)]
pub struct RecordingKernel {
    /// `(to, opcode)` of each call, in order.
    pub calls: Vec<(Endpoint, u16)>,
    /// `(request id, reply)` of each deferred reply, in order.
    pub replies: Vec<(u64, Reply)>,
}

impl Kernel for RecordingKernel {
    fn call(
        &mut self,
        to: Endpoint,
        opcode: u16,
        _payload: &[u8],
        _bulk: &[u8],
    ) -> Result<Reply, Errno> {
        self.calls.push((to, opcode));
        Err(errno::ENOSYS)
    }

    fn reply(&mut self, request_id: u64, reply: Reply) {
        self.replies.push((request_id, reply));
    }
}
