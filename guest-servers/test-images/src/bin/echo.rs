//! The IPC test server: answers the test opcodes of `virtio_seep::opcode` in a
//! `reply_recv` loop and never exits.
//!
//! - `TEST_PING`: empty reply.
//! - `TEST_ECHO`: reply with the same payload and bulk data.
//! - `TEST_STORE`: keep the payload (its state changes); the reply carries the payload
//!   stored before;
//! - `TEST_CRASH`: corrupt the stored payload, then crash (`ud2`): a poison request;
//! - `TEST_RELEASE_CRASH`: answer the parked requests (the window closes), then crash;
//! - `TEST_HANG`: spin forever without an exit (the VMM's watchdog must catch it);
//! - `TEST_BUSY`: loop forever through `Nop` hypercalls (only the per-request budget
//!   catches it);
//! - `TEST_COUNT`: reply with the number of `TEST_NOTIFY` counted (u64, little endian);
//! - `TEST_NOTIFY` (one-way): count it, no reply.
//! - `TEST_NOTIFY_CRASH` (one-way): corrupt the stored payload, count it, then crash
//!   (`ud2`): a poison one-way message;
//! - `TEST_PRINT`: print the payload as one console line, empty reply.
//! - `TEST_DEFERRED`: park the request (up to `ECHO_PARK_MAX`; one more is answered at
//!   once with `EINVAL`), no reply now.
//! - `TEST_RELEASE`: reply to every parked request (status 0, payload = its position
//!   among them as one byte, in parking order), then to the release (payload: how many
//!   it released, one byte).
//! - any other request: `ENOSYS`; any other one-way message: ignored.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};

use ankh_guest_rt::console::Line;
use ankh_guest_rt::ipc::{Ipc, Received};
use ankh_guest_rt::BootInfo;
use ankh_test_images::expect::ECHO_PARK_MAX;
use virtio_seep::errno::{Errno, EINVAL, ENOSYS, OK};
use virtio_seep::message::INLINE_PAYLOAD_MAX;
use virtio_seep::opcode::{
    TEST_BUSY, TEST_COUNT, TEST_CRASH, TEST_DEFERRED, TEST_ECHO, TEST_HANG, TEST_NOTIFY,
    TEST_NOTIFY_CRASH, TEST_PING, TEST_PRINT, TEST_RELEASE, TEST_RELEASE_CRASH, TEST_STORE,
};

ankh_guest_rt::entry!(main);

/// `TEST_NOTIFY` messages received so far (server state, in memory).
static NOTIFIED: AtomicU64 = AtomicU64::new(0);

/// The payload of the last `TEST_STORE` (server state, in memory)...
static STORED: [AtomicU8; INLINE_PAYLOAD_MAX] = [const { AtomicU8::new(0) }; INLINE_PAYLOAD_MAX];

/// ...and its length.
static STORED_LEN: AtomicUsize = AtomicUsize::new(0);

/// What to do once the message is handled (and no longer borrowed).
enum Action {
    /// Nothing to answer: wait for the next message.
    Receive,
    /// Answer `id` with `status` and the first `len` bytes of the payload buffer (and, if
    /// `echo_bulk`, the bulk data just received), then wait.
    Reply {
        id: u64,
        status: Errno,
        len: usize,
        echo_bulk: bool,
    },
    /// Answer every parked request, then `id`.
    Release { id: u64 },
    /// Answer every parked request, then crash.
    ReleaseCrash,
}

/// The requests parked by `TEST_DEFERRED`, in arrival order.
struct Parked {
    ids: [u64; ECHO_PARK_MAX],
    count: usize,
}

fn main(_boot: &BootInfo) -> u32 {
    let mut ipc = Ipc::init();
    let mut parked = Parked {
        ids: [0; ECHO_PARK_MAX],
        count: 0,
    };
    let mut out = [0u8; INLINE_PAYLOAD_MAX];
    let mut next = ipc.receive();
    loop {
        let action = match next {
            Ok(message) => handle(&message, &mut parked, &mut out),
            // A failure the VMM reported instead of a message: nothing to answer.
            Err(_) => Action::Receive,
        };
        next = match action {
            Action::Receive => ipc.receive(),
            Action::Reply {
                id,
                status,
                len,
                echo_bulk: false,
            } => ipc.reply_recv(id, status, &out[..len], &[]),
            Action::Reply {
                id,
                status,
                len,
                echo_bulk: true,
            } => ipc.reply_recv_forward_bulk(id, status, &out[..len]),
            Action::Release { id } => {
                for (position, &parked_id) in parked.ids[..parked.count].iter().enumerate() {
                    ipc.reply(parked_id, OK, &position.to_le_bytes()[..1], &[]);
                }
                let released = [u8::try_from(parked.count).unwrap_or(u8::MAX)];
                parked.count = 0;
                ipc.reply_recv(id, OK, &released, &[])
            }
            Action::ReleaseCrash => {
                for (position, &parked_id) in parked.ids[..parked.count].iter().enumerate() {
                    ipc.reply(parked_id, OK, &position.to_le_bytes()[..1], &[]);
                }
                // SAFETY: `ud2` raises #UD, reported by the runtime's exception stubs;
                // the VMM recovers or stops the domain, it never resumes past this.
                unsafe { core::arch::asm!("ud2", options(nomem, nostack, noreturn)) }
            }
        };
    }
}

/// Handles one message; a reply payload goes into `out`.
fn handle(
    message: &Received<'_>,
    parked: &mut Parked,
    out: &mut [u8; INLINE_PAYLOAD_MAX],
) -> Action {
    let id = message.header.request_id;
    let empty = |status| Action::Reply {
        id,
        status,
        len: 0,
        echo_bulk: false,
    };
    match message.header.opcode {
        TEST_PING => empty(OK),
        TEST_ECHO => {
            let len = message.payload.len();
            out[..len].copy_from_slice(message.payload);
            Action::Reply {
                id,
                status: OK,
                len,
                echo_bulk: true,
            }
        }
        TEST_STORE => {
            // The reply carries what was stored before (so a client can see whether a
            // crash in between was rolled back).
            let previous = STORED_LEN.load(Ordering::Relaxed);
            for (slot, byte) in out.iter_mut().zip(&STORED).take(previous) {
                *slot = byte.load(Ordering::Relaxed);
            }
            for (slot, &byte) in STORED.iter().zip(message.payload) {
                slot.store(byte, Ordering::Relaxed);
            }
            STORED_LEN.store(message.payload.len(), Ordering::Relaxed);
            Action::Reply {
                id,
                status: OK,
                len: previous,
                echo_bulk: false,
            }
        }
        TEST_CRASH => {
            // Corrupt the state first: a recovered server must not keep this.
            for slot in &STORED {
                slot.store(b'X', Ordering::Relaxed);
            }
            STORED_LEN.store(INLINE_PAYLOAD_MAX, Ordering::Relaxed);
            // SAFETY: `ud2` raises #UD, reported by the runtime's exception stubs; the
            // VMM recovers or stops the domain, it never resumes past this.
            unsafe { core::arch::asm!("ud2", options(nomem, nostack, noreturn)) }
        }
        TEST_NOTIFY => {
            NOTIFIED.fetch_add(1, Ordering::Relaxed);
            Action::Receive
        }
        TEST_NOTIFY_CRASH => {
            for slot in &STORED {
                slot.store(b'X', Ordering::Relaxed);
            }
            NOTIFIED.fetch_add(1, Ordering::Relaxed);
            // SAFETY: as for `TEST_CRASH`.
            unsafe { core::arch::asm!("ud2", options(nomem, nostack, noreturn)) }
        }
        TEST_HANG => loop {
            core::hint::spin_loop();
        },
        TEST_BUSY => loop {
            ankh_guest_rt::hypercall::nop();
        },
        TEST_COUNT => {
            let count = NOTIFIED.load(Ordering::Relaxed).to_le_bytes();
            out[..count.len()].copy_from_slice(&count);
            Action::Reply {
                id,
                status: OK,
                len: count.len(),
                echo_bulk: false,
            }
        }
        TEST_PRINT => {
            Line::new().bytes(message.payload).send();
            empty(OK)
        }
        TEST_DEFERRED if parked.count < ECHO_PARK_MAX => {
            parked.ids[parked.count] = id;
            parked.count += 1;
            Action::Receive
        }
        TEST_DEFERRED => empty(EINVAL),
        TEST_RELEASE => Action::Release { id },
        TEST_RELEASE_CRASH => Action::ReleaseCrash,
        _ if message.is_request() => empty(ENOSYS),
        _ => Action::Receive,
    }
}
