//! What the programs do about `ERESTART`, the answer of a server that was rolled back
//! mid-request (error virtualization: the request was not carried out).
//!
//! - [`retry_restarted`]: make a call again, a bounded number of times;
//! - [`Watched`]: a channel that makes a call answered `ERESTART` again the same way
//!   (the suite's), and counts those answers, so that the suite can tell a failure
//!   that followed one from a failure that did not.
//!
//! Making the call again is what a client of error virtualization does: the server was
//! rolled back to before the request, so the request was not carried out and doing it
//! again does it once. The library itself never does (`ankh_ulib` returns `ERESTART`
//! to its caller): whether a call may be made again is the program's decision.

use alloc::rc::Rc;
use core::cell::Cell;

use ankh_proto::DomainId;
use ankh_ulib::errno::ERESTART;
use ankh_ulib::{Channel, Errno};

/// The OS as the suite and the children it starts see it: `ankh_ulib::System` with a
/// [`Watched`] channel. A child's call answered `ERESTART` is the suite's business too
/// (its checks read what the children did), so the children make it again as well.
pub fn watched_system(
    boot: &ankh_guest_rt::BootInfo,
) -> ankh_ulib::Os<Watched<ankh_guest_rt::ipc::Ipc>> {
    ankh_ulib::Os::new(Watched::new(ankh_guest_rt::ipc::Ipc::init()), boot)
}

/// How often a call answered `ERESTART` is made in all before the caller gives up: a
/// server rolled back this often in a row is not coming back. The bound the servers
/// use too (`ankh_proto::server::RESTART_RETRIES`, which says why it is this high):
/// with 8, the queued kills of a storm answered eight calls in a row, and the programs
/// gave up on a system that was recovering (init ended with 127, and a `child-hog`
/// that gave up its report left the suite waiting for ever).
pub const RESTART_ATTEMPTS: usize = ankh_proto::server::RESTART_RETRIES as usize + 1;

/// `call` again while it is answered `ERESTART`, at most [`RESTART_ATTEMPTS`] times in
/// all; its last answer.
pub fn retry_restarted<T>(mut call: impl FnMut() -> Result<T, Errno>) -> Result<T, Errno> {
    let mut answer = call();
    for _ in 1..RESTART_ATTEMPTS {
        match answer {
            Err(ERESTART) => answer = call(),
            _ => break,
        }
    }
    answer
}

/// A channel that makes a call answered `ERESTART` again, at most
/// [`RESTART_ATTEMPTS`] times in all, and counts the `ERESTART` answers.
#[derive(Debug)]
pub struct Watched<C> {
    /// The channel itself.
    inner: C,
    /// `ERESTART` answers so far (shared with whoever reads it: [`Watched::counter`]).
    restarts: Rc<Cell<u64>>,
}

impl<C: Channel> Watched<C> {
    /// `inner`, watched.
    pub fn new(inner: C) -> Watched<C> {
        Watched {
            inner,
            restarts: Rc::new(Cell::new(0)),
        }
    }

    /// The count of `ERESTART` answers, which goes on counting.
    pub fn counter(&self) -> Rc<Cell<u64>> {
        Rc::clone(&self.restarts)
    }

    /// The channel inside (host tests inspect their fakes through it).
    pub fn inner(&mut self) -> &mut C {
        &mut self.inner
    }
}

impl<C: Channel> Channel for Watched<C> {
    fn call<R>(
        &mut self,
        to: DomainId,
        opcode: u16,
        payload: &[u8],
        bulk: &[u8],
        reply: impl FnOnce(&[u8], &[u8]) -> R,
    ) -> Result<R, Errno> {
        // `reply` is called at most once, with the answer that is not an error.
        let mut reply = Some(reply);
        for attempt in 1..=RESTART_ATTEMPTS {
            let answer = self.inner.call(to, opcode, payload, bulk, |payload, bulk| {
                reply.take().map(|reply| reply(payload, bulk))
            });
            match answer {
                Err(ERESTART) => {
                    self.restarts.set(self.restarts.get() + 1);
                    if attempt == RESTART_ATTEMPTS || reply.is_none() {
                        break;
                    }
                }
                Err(errno) => return Err(errno),
                Ok(Some(value)) => return Ok(value),
                // Only when `reply` was gone before the call, which the loop prevents.
                Ok(None) => break,
            }
        }
        Err(ERESTART)
    }
}
