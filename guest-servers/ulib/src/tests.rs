//! The library against a scripted channel.

use std::collections::VecDeque;

use ankh_proto::errno::{EFAULT, EINVAL, EIO, EMSGSIZE, ENOENT, ENOSYS, EPIPE};
use ankh_proto::opcode::{
    DS_LIST, DS_PUBLISH, DS_RETRIEVE, MM_BRK, PM_GETPID, PM_GETPPID, PM_PS, PM_SPAWN, PM_WAIT,
    VFS_OPEN, VFS_READ, VFS_READDIR, VFS_RENAME, VFS_WRITE,
};
use ankh_proto::pm::{PidRecord, ProcEntry, Spawn, Wait, WaitStatus, SPAWN_INHERIT_FDS};
use ankh_proto::vfs::{Count, Fd as FdRecord, Io, Open, IO_MAX, O_CREAT, O_RDWR};
use ankh_proto::{wire, DomainId, Errno};
use zerocopy::IntoBytes;

use crate::args::{args_key, decode, encode};
use crate::num::{parse_dec, push_dec};
use crate::{Channel, Os, Servers};

/// One request the fake saw.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Sent {
    to: DomainId,
    opcode: u16,
    payload: Vec<u8>,
    bulk: Vec<u8>,
}

/// A scripted reply: payload and bulk data, or an error status.
type Scripted = Result<(Vec<u8>, Vec<u8>), Errno>;

/// Answers each call with the next scripted reply.
#[derive(Default)]
struct Script {
    replies: VecDeque<Scripted>,
    sent: Vec<Sent>,
}

impl Channel for Script {
    fn call<R>(
        &mut self,
        to: DomainId,
        opcode: u16,
        payload: &[u8],
        bulk: &[u8],
        reply: impl FnOnce(&[u8], &[u8]) -> R,
    ) -> Result<R, Errno> {
        self.sent.push(Sent {
            to,
            opcode,
            payload: payload.to_vec(),
            bulk: bulk.to_vec(),
        });
        let (payload, bulk) = self.replies.pop_front().expect("no scripted reply")?;
        Ok(reply(&payload, &bulk))
    }
}

const SERVERS: Servers = Servers {
    pm: Some(4),
    vfs: Some(2),
    ds: Some(1),
    mm: Some(3),
};

/// An `Os` whose RAM is all of the host's address space (real host buffers pass).
fn os(replies: Vec<Scripted>) -> Os<Script> {
    let script = Script {
        replies: replies.into(),
        sent: Vec::new(),
    };
    Os::with_servers(script, SERVERS, 0..u64::MAX)
}

fn ok(payload: &[u8]) -> Scripted {
    Ok((payload.to_vec(), Vec::new()))
}

fn ok_bulk(payload: &[u8], bulk: &[u8]) -> Scripted {
    Ok((payload.to_vec(), bulk.to_vec()))
}

#[test]
fn spawn_sends_flags_path_and_argv_to_pm() {
    let mut os = os(vec![ok(PidRecord {
        pid: 9,
        reserved: 0,
    }
    .as_bytes())]);
    assert_eq!(os.spawn("/bin/x", &["x", "-v"], true), Ok(9));
    let sent = &os.channel().sent[0];
    assert_eq!((sent.to, sent.opcode), (4, PM_SPAWN));
    let flags = Spawn {
        flags: SPAWN_INHERIT_FDS,
        reserved: 0,
    };
    assert_eq!(sent.payload, flags.as_bytes());
    assert_eq!(sent.bulk, b"/bin/x\0x\0-v\0");
}

#[test]
fn wait_getpid_getppid_and_ps_decode_their_records() {
    let status = WaitStatus {
        pid: 9,
        code: 3,
        cause: 0,
        reserved: 0,
    };
    let entries = [
        ProcEntry {
            pid: 5,
            ppid: 0,
            state: 0,
            reserved: 0,
        },
        ProcEntry {
            pid: 9,
            ppid: 5,
            state: 1,
            reserved: 0,
        },
    ];
    let mut os = os(vec![
        ok(status.as_bytes()),
        ok(status.as_bytes()),
        ok(PidRecord {
            pid: 5,
            reserved: 0,
        }
        .as_bytes()),
        ok(PidRecord {
            pid: 1,
            reserved: 0,
        }
        .as_bytes()),
        ok_bulk(&[], entries.as_bytes()),
        ok_bulk(&[], &[0; 17]),
    ]);
    assert_eq!(os.wait(9), Ok(status));
    assert_eq!(os.wait_any(), Ok(status));
    assert_eq!(os.getpid(), Ok(5));
    assert_eq!(os.getppid(), Ok(1));
    assert_eq!(os.ps(), Ok(entries.to_vec()));
    assert_eq!(os.ps(), Err(EINVAL));
    let sent = &os.channel().sent;
    assert_eq!(
        sent[0].payload,
        Wait {
            pid: 9,
            reserved: 0
        }
        .as_bytes()
    );
    assert_eq!(
        sent[1].payload,
        Wait {
            pid: -1,
            reserved: 0
        }
        .as_bytes()
    );
    assert_eq!(sent[2].opcode, PM_GETPID);
    assert_eq!(sent[3].opcode, PM_GETPPID);
    assert_eq!(sent[4].opcode, PM_PS);
    assert_eq!(sent[1].opcode, PM_WAIT);
}

#[test]
fn short_reply_records_are_einval_and_errors_pass_through() {
    let mut os = os(vec![ok(&[1, 2]), Err(ENOENT)]);
    assert_eq!(os.getpid(), Err(EINVAL));
    assert_eq!(os.open("/nope", 0), Err(ENOENT));
}

#[test]
fn open_read_write_use_vfs_records() {
    let mut os = os(vec![
        ok(FdRecord { fd: 3, reserved: 0 }.as_bytes()),
        ok_bulk(Count { count: 5 }.as_bytes(), b"hello world"),
        ok(Count { count: 4 }.as_bytes()),
    ]);
    assert_eq!(os.open("/tmp/f", O_CREAT | O_RDWR), Ok(3));
    let mut buf = [0u8; 5];
    // A reply longer than asked is cut to the buffer.
    assert_eq!(os.read(3, &mut buf), Ok(5));
    assert_eq!(&buf, b"hello");
    assert_eq!(os.write(3, b"data"), Ok(4));
    let sent = &os.channel().sent;
    assert_eq!((sent[0].to, sent[0].opcode), (2, VFS_OPEN));
    let open = Open {
        flags: O_CREAT | O_RDWR,
        mode: 0,
    };
    assert_eq!(sent[0].payload, open.as_bytes());
    assert_eq!(sent[0].bulk, b"/tmp/f\0");
    let io = Io {
        fd: 3,
        len: 5,
        offset: 0,
    };
    assert_eq!(
        (sent[1].opcode, &sent[1].payload[..]),
        (VFS_READ, io.as_bytes())
    );
    assert_eq!(sent[2].opcode, VFS_WRITE);
    assert_eq!(sent[2].payload, FdRecord { fd: 3, reserved: 0 }.as_bytes());
    assert_eq!(sent[2].bulk, b"data");
}

#[test]
fn a_pipe_write_sends_the_rest_after_a_short_count_or_a_wake_up() {
    let count = |count| ok(Count { count }.as_bytes());
    let mut os = os(vec![count(3), count(0), count(2), count(5)]);
    assert_eq!(os.write(4, b"0123456789"), Ok(10));
    let bulks: Vec<&[u8]> = os.channel().sent.iter().map(|s| &s.bulk[..]).collect();
    assert_eq!(
        bulks,
        [&b"0123456789"[..], b"3456789", b"3456789", b"56789"]
    );
    // An error after some bytes went in reports those bytes; before, the error.
    let mut os = super::tests::os(vec![count(4), Err(EPIPE)]);
    assert_eq!(os.write(4, b"0123456789"), Ok(4));
    let mut os = super::tests::os(vec![Err(EPIPE)]);
    assert_eq!(os.write(4, b"0123456789"), Err(EPIPE));
    // A count beyond what was sent is a broken reply.
    let mut os = super::tests::os(vec![count(11)]);
    assert_eq!(os.write(4, b"0123456789"), Err(EIO));
}

#[test]
fn buffers_outside_ram_are_efault_and_huge_ones_einval_without_a_call() {
    let mut os = Os::with_servers(Script::default(), SERVERS, 0x10_0000..0x40_0000);
    // SAFETY: the ranges lie outside the RAM given above, so they are never touched.
    unsafe {
        assert_eq!(os.write_ptr(3, 0x1000 as *const u8, 16), Err(EFAULT));
        assert_eq!(os.write_ptr(3, 0x3f_fff0 as *const u8, 32), Err(EFAULT));
        assert_eq!(os.read_ptr(3, usize::MAX as *mut u8, 2), Err(EFAULT));
        assert_eq!(
            os.read_ptr(3, 0x10_0000 as *mut u8, IO_MAX + 1),
            Err(EINVAL)
        );
    }
    // An empty buffer has a dangling address, and is fine: the call goes out.
    os.channel()
        .replies
        .push_back(ok(Count { count: 0 }.as_bytes()));
    assert_eq!(os.write(3, &[]), Ok(0));
    assert_eq!(os.channel().sent.len(), 1);
}

#[test]
fn missing_servers_are_enosys_and_oversized_requests_emsgsize() {
    let servers = Servers {
        mm: None,
        ..SERVERS
    };
    let mut os = Os::with_servers(Script::default(), servers, 0..u64::MAX);
    assert_eq!(os.brk(4096), Err(ENOSYS));
    let long = "x".repeat(1 << 20);
    assert_eq!(os.open(&long, 0), Err(EMSGSIZE));
    assert!(os.channel().sent.is_empty());
}

#[test]
fn path_lists_ds_and_mm_requests() {
    let mut os = os(vec![
        ok_bulk(&[], b"a\0b\0"),
        ok(&[]),
        ok(&[]),
        ok_bulk(&[], b"value\0"),
        ok_bulk(&[], b"k1\0k2\0"),
        ok(&(8192u64).to_le_bytes()),
    ]);
    assert_eq!(os.readdir("/"), Ok(vec!["a".into(), "b".into()]));
    assert_eq!(os.rename("/a", "/b"), Ok(()));
    assert_eq!(os.ds_publish("k", "v"), Ok(()));
    assert_eq!(os.ds_retrieve("k"), Ok("value".into()));
    assert_eq!(os.ds_list("k"), Ok(vec!["k1".into(), "k2".into()]));
    assert_eq!(os.brk(8000), Ok(8192));
    let sent = &os.channel().sent;
    assert_eq!(
        (sent[0].opcode, &sent[0].bulk[..]),
        (VFS_READDIR, &b"/\0"[..])
    );
    assert_eq!(
        (sent[1].opcode, &sent[1].bulk[..]),
        (VFS_RENAME, &b"/a\0/b\0"[..])
    );
    assert_eq!(
        (sent[2].to, sent[2].opcode, &sent[2].bulk[..]),
        (1, DS_PUBLISH, &b"k\0v\0"[..])
    );
    assert_eq!(sent[3].opcode, DS_RETRIEVE);
    assert_eq!(sent[4].opcode, DS_LIST);
    assert_eq!((sent[5].to, sent[5].opcode), (3, MM_BRK));
    assert_eq!(sent[5].payload, 8000u64.to_le_bytes());
}

#[test]
fn args_travel_through_ds_under_the_parents_pid() {
    assert_eq!(args_key(42), "args.42");
    assert_eq!(encode(&[3, 0, 17]), "3 0 17");
    assert_eq!(decode("3 0 17"), Ok(vec![3, 0, 17]));
    assert_eq!(decode(""), Ok(vec![]));
    assert_eq!(decode("3  4"), Err(EINVAL));
    assert_eq!(decode("x"), Err(EINVAL));
    let mut os = os(vec![
        ok(PidRecord {
            pid: 7,
            reserved: 0,
        }
        .as_bytes()),
        ok_bulk(&[], b"4 5\0"),
    ]);
    assert_eq!(os.parent_args(), Ok(vec![4, 5]));
    assert_eq!(os.channel().sent[1].bulk, wire::join(["args.7"]));
}

#[test]
fn decimal_text() {
    let mut out = Vec::new();
    for value in [0, 7, 10, 1234567890, u64::MAX] {
        out.clear();
        push_dec(&mut out, value);
        assert_eq!(out, value.to_string().as_bytes());
        assert_eq!(parse_dec(&out), Some(value));
    }
    assert_eq!(parse_dec(b""), None);
    assert_eq!(parse_dec(b"18446744073709551616"), None);
    assert_eq!(parse_dec(b"-1"), None);
}
