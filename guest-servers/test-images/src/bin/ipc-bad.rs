//! Malformed IPC, chosen by the domain name (see `expect::IPC_BAD_NAMES`): every case
//! must make the VMM stop the domain with a fault. Prints `ipc-bad: <name>` and nothing
//! else; returns `RESUMED_AFTER_FAULT_CODE` if the VMM resumes it after the bad action,
//! `UNKNOWN_NAME_CODE` for a name it does not know.
#![no_std]
#![no_main]

use core::cell::UnsafeCell;

use ankh_guest_rt::console::Line;
use ankh_guest_rt::hypercall;
use ankh_guest_rt::ipc::ring::{ring_addresses, Descriptor, SplitRing, DESC_F_NEXT};
use ankh_guest_rt::ipc::Ipc;
use ankh_guest_rt::BootInfo;
use ankh_test_images::expect::{
    ECHO_PEER, IPC_BAD_ADDR, IPC_BAD_DEST, IPC_BAD_OPCODE, IPC_BAD_OP_VALUE, IPC_BAD_PAYLOAD_LEN,
    IPC_BAD_PREFIX, IPC_BAD_REQUEST_ID, RESUMED_AFTER_FAULT_CODE, UNKNOWN_NAME_CODE,
};
use virtio_seep::errno::OK;
use virtio_seep::message::{DomainId, MessageHeader, HEADER_SIZE};
use virtio_seep::opcode::TEST_NOTIFY;
use virtio_seep::queue::{IpcOp, QueueSetup};

ankh_guest_rt::entry!(main);

/// Rings for `bad-setup`, which must not use `Ipc::init` (that would register good ones).
struct SetupRings(UnsafeCell<[SplitRing; 2]>);

// SAFETY: no Rust code ever reads or writes the rings; only their addresses are taken.
unsafe impl Sync for SetupRings {}

static SETUP_RINGS: SetupRings = SetupRings(UnsafeCell::new([SplitRing::new(), SplitRing::new()]));

/// 32 as a descriptor length (lossless).
#[allow(clippy::cast_possible_truncation)]
const HEADER_LEN: u32 = HEADER_SIZE as u32;

fn main(boot: &BootInfo) -> u32 {
    let name = boot.name();
    Line::new().str(IPC_BAD_PREFIX).str(name).send();
    let echo = boot.peer(ECHO_PEER).unwrap_or(0);
    match name {
        "bad-setup" => bad_setup(),
        "bad-desc-addr" | "bad-length" | "bad-overflow" | "bad-loop" | "bad-opcode"
        | "bad-dest" | "bad-reply" | "storm" | "bad-op" => bad_message(name, echo),
        _ => return UNKNOWN_NAME_CODE,
    }
    RESUMED_AFTER_FAULT_CODE
}

/// `IpcSetup` with the TX descriptor table outside RAM (everything else valid).
fn bad_setup() {
    let rings = SETUP_RINGS.0.get().cast::<SplitRing>();
    let mut setup = QueueSetup {
        tx: ring_addresses(rings),
        rx: ring_addresses(rings.wrapping_add(1)),
    };
    setup.tx.desc = IPC_BAD_ADDR;
    // SAFETY: the VMM reads `setup` (on our stack, alive for the call) and must refuse
    // it; even if it accepted, the rings it names are statics no Rust code touches.
    unsafe { hypercall::ipc_setup(&setup) };
}

/// The bad messages: set up IPC properly, then send the broken thing.
fn bad_message(name: &str, echo: DomainId) {
    let mut ipc = Ipc::init();
    let notify = IpcOp::Flush.encode(0);
    let header = MessageHeader {
        destination: echo,
        opcode: TEST_NOTIFY,
        ..MessageHeader::default()
    };
    match name {
        "bad-desc-addr" => {
            let mut raw = ipc.raw();
            raw.write_message(header, &[]);
            raw.set_desc(0, desc(IPC_BAD_ADDR, HEADER_LEN, 0, 0));
            raw.push_avail(0);
            raw.notify(notify);
        }
        "bad-length" => {
            let mut raw = ipc.raw();
            let bad = MessageHeader {
                payload_len: IPC_BAD_PAYLOAD_LEN,
                ..header
            };
            let addr = raw.write_message(bad, &[]);
            raw.set_desc(0, desc(addr, HEADER_LEN + IPC_BAD_PAYLOAD_LEN, 0, 0));
            raw.push_avail(0);
            raw.notify(notify);
        }
        "bad-overflow" => {
            let mut raw = ipc.raw();
            // 0xffff_fff0 + 0x20 = 0x1_0000_0010: 0x10 when summed in 32 bits.
            let bad = MessageHeader {
                bulk_len: 0x10,
                ..header
            };
            let addr = raw.write_message(bad, &[]);
            raw.set_desc(0, desc(addr, HEADER_LEN, DESC_F_NEXT, 1));
            raw.set_desc(1, desc(addr, 0xffff_fff0, DESC_F_NEXT, 2));
            raw.set_desc(2, desc(addr, 0x20, 0, 0));
            raw.push_avail(0);
            raw.notify(notify);
        }
        "bad-loop" => {
            let mut raw = ipc.raw();
            let looped = MessageHeader {
                bulk_len: 16,
                ..header
            };
            let addr = raw.write_message(looped, &[]);
            raw.set_desc(0, desc(addr, HEADER_LEN, DESC_F_NEXT, 1));
            raw.set_desc(1, desc(addr, 16, DESC_F_NEXT, 0));
            raw.push_avail(0);
            raw.notify(notify);
        }
        "bad-opcode" => ipc.send(echo, IPC_BAD_OPCODE, &[], &[]),
        "bad-dest" => ipc.send(IPC_BAD_DEST, TEST_NOTIFY, &[], &[]),
        "bad-reply" => ipc.reply(IPC_BAD_REQUEST_ID, OK, &[], &[]),
        "storm" => loop {
            ipc.send(echo, TEST_NOTIFY, &[], &[]);
        },
        _ => ipc.raw().notify(IPC_BAD_OP_VALUE),
    }
}

/// A TX descriptor (device-readable).
fn desc(addr: u64, len: u32, flags: u16, next: u16) -> Descriptor {
    Descriptor {
        addr,
        len,
        flags,
        next,
    }
}
