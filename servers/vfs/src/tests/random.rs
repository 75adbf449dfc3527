//! Property test: random requests from random processes never panic and keep every
//! invariant (checked by the harness after each request).

use proptest::prelude::*;

use super::*;

const PIDS: [Pid; 3] = [INIT, APP, OTHER];
/// Path components: mostly real names, sometimes `..` and `.`.
const NAMES: [&str; 8] = ["a", "a", "a", "b", "b", "b", "..", "."];

/// One random request.
#[derive(Clone, Debug)]
enum Op {
    Open(usize, String, u32),
    Close(usize, i32),
    Read(usize, i32, u32),
    Write(usize, i32, Vec<u8>),
    Pread(usize, i32, u32, u64),
    Pwrite(usize, i32, Vec<u8>, u64),
    Lseek(usize, i32, i64, u32),
    Stat(String),
    Fstat(usize, i32),
    Unlink(String),
    Mkdir(String),
    Rmdir(String),
    Readdir(String),
    Rename(String, String),
    Truncate(String, u64),
    Dup(usize, i32),
    Pipe(usize),
    Spawn(usize, usize, usize, u32),
    Exit(usize),
    Raw(usize, u16, Vec<u8>, Vec<u8>),
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(&NAMES[..]), 0..4).prop_map(|parts| {
        let mut path = String::from("/");
        path.push_str(&parts.join("/"));
        path
    })
}

fn fd() -> impl Strategy<Value = i32> {
    prop_oneof![10 => 0..4i32, 1 => Just(-1), 1 => Just(40)]
}

fn pid() -> impl Strategy<Value = usize> {
    0..PIDS.len()
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        (1usize..3 * PIPE_BUF).prop_map(|len| alloc::vec![0xab; len]),
    ]
}

fn flags() -> impl Strategy<Value = u32> {
    (
        0u32..3,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(mode, creat, excl, trunc, append)| {
            mode | if creat { O_CREAT } else { 0 }
                | if excl { O_EXCL } else { 0 }
                | if trunc { O_TRUNC } else { 0 }
                | if append { O_APPEND } else { 0 }
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (pid(), path(), flags()).prop_map(|(p, s, f)| Op::Open(p, s, f)),
        2 => (pid(), fd()).prop_map(|(p, f)| Op::Close(p, f)),
        6 => (pid(), fd(), 0u32..6000).prop_map(|(p, f, n)| Op::Read(p, f, n)),
        6 => (pid(), fd(), bytes()).prop_map(|(p, f, b)| Op::Write(p, f, b)),
        1 => (pid(), fd(), 0u32..100, 0u64..200).prop_map(|(p, f, n, o)| Op::Pread(p, f, n, o)),
        1 => (pid(), fd(), bytes(), 0u64..200).prop_map(|(p, f, b, o)| Op::Pwrite(p, f, b, o)),
        1 => (pid(), fd(), -20i64..20, 0u32..4).prop_map(|(p, f, o, w)| Op::Lseek(p, f, o, w)),
        1 => path().prop_map(Op::Stat),
        1 => (pid(), fd()).prop_map(|(p, f)| Op::Fstat(p, f)),
        1 => path().prop_map(Op::Unlink),
        2 => path().prop_map(Op::Mkdir),
        1 => path().prop_map(Op::Rmdir),
        1 => path().prop_map(Op::Readdir),
        2 => (path(), path()).prop_map(|(a, b)| Op::Rename(a, b)),
        1 => (path(), 0u64..100).prop_map(|(p, n)| Op::Truncate(p, n)),
        2 => (pid(), fd()).prop_map(|(p, f)| Op::Dup(p, f)),
        3 => pid().prop_map(Op::Pipe),
        2 => (pid(), pid(), pid(), 0u32..3).prop_map(|(s, c, p, f)| Op::Spawn(s, c, p, f)),
        1 => pid().prop_map(Op::Exit),
        1 => (pid(), 0x01ffu16..0x0214, prop::collection::vec(any::<u8>(), 0..24), prop::collection::vec(any::<u8>(), 0..12))
            .prop_map(|(p, o, a, b)| Op::Raw(p, o, a, b)),
    ]
}

/// Sends one operation; returns the request ids it parked.
fn run(h: &mut Harness, op: &Op) -> Option<(Pid, u64)> {
    let answer = match op {
        Op::Open(p, path, flags) => {
            let open = Open {
                flags: *flags,
                mode: 0,
            };
            h.send(
                PIDS[*p],
                VFS_OPEN,
                &wire::bytes(&open),
                &wire::join([path.as_str()]),
            )
        }
        Op::Close(p, fd) => h.send(PIDS[*p], VFS_CLOSE, &fd_bytes(*fd), &[]),
        Op::Read(p, fd, len) => h.read_answer(PIDS[*p], *fd, *len),
        Op::Write(p, fd, data) => h.write_answer(PIDS[*p], *fd, data),
        Op::Pread(p, fd, len, offset) => {
            let io = Io {
                fd: *fd,
                len: *len,
                offset: *offset,
            };
            h.send(PIDS[*p], VFS_PREAD, &wire::bytes(&io), &[])
        }
        Op::Pwrite(p, fd, data, offset) => {
            let io = Io {
                fd: *fd,
                len: 0,
                offset: *offset,
            };
            h.send(PIDS[*p], VFS_PWRITE, &wire::bytes(&io), data)
        }
        Op::Lseek(p, fd, offset, whence) => {
            let seek = Seek {
                fd: *fd,
                whence: *whence,
                offset: *offset,
            };
            h.send(PIDS[*p], VFS_LSEEK, &wire::bytes(&seek), &[])
        }
        Op::Stat(path) => h.send(APP, VFS_STAT, &[], &wire::join([path.as_str()])),
        Op::Fstat(p, fd) => h.send(PIDS[*p], VFS_FSTAT, &fd_bytes(*fd), &[]),
        Op::Unlink(path) => h.send(APP, VFS_UNLINK, &[], &wire::join([path.as_str()])),
        Op::Mkdir(path) => h.send(APP, VFS_MKDIR, &[], &wire::join([path.as_str()])),
        Op::Rmdir(path) => h.send(APP, VFS_RMDIR, &[], &wire::join([path.as_str()])),
        Op::Readdir(path) => h.send(APP, VFS_READDIR, &[], &wire::join([path.as_str()])),
        Op::Rename(a, b) => h.send(APP, VFS_RENAME, &[], &wire::join([a.as_str(), b.as_str()])),
        Op::Truncate(path, len) => h.send(
            APP,
            VFS_TRUNCATE,
            &wire::bytes(&Offset { offset: *len }),
            &wire::join([path.as_str()]),
        ),
        Op::Dup(p, fd) => h.send(PIDS[*p], VFS_DUP, &fd_bytes(*fd), &[]),
        Op::Pipe(p) => h.send(PIDS[*p], VFS_PIPE, &[], &[]),
        Op::Spawn(s, c, p, flags) => {
            let spawn = ProcSpawn {
                child: PIDS[*c],
                parent: PIDS[*p],
                flags: *flags,
                reserved: 0,
            };
            h.send(PIDS[*s], VFS_PROC_SPAWN, &wire::bytes(&spawn), &[])
        }
        Op::Exit(p) => {
            let exit = ProcExit {
                pid: PIDS[*p],
                reserved: 0,
            };
            h.send(INIT, VFS_PROC_EXIT, &wire::bytes(&exit), &[])
        }
        Op::Raw(p, opcode, payload, bulk) => h.send(PIDS[*p], *opcode, payload, bulk),
    };
    let pid = match op {
        Op::Read(p, ..) | Op::Write(p, ..) => PIDS[*p],
        _ => return None,
    };
    match answer {
        Answer::Parked(id) => Some((pid, id)),
        Answer::Now(_) => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_requests_keep_the_invariants(ops in prop::collection::vec(op(), 1..150)) {
        let mut h = Harness::with_config(Config {
            data_budget: 8 * 1024,
            max_inodes: 12,
            // Publishing too: the invariants check the last value published.
            publish_open_files: true,
            ..Config::default()
        });
        // Parked requests by id, with their process: each is answered at most once,
        // and never after its process exited.
        let mut parked: BTreeMap<u64, Pid> = BTreeMap::new();
        // In the end everyone exits: nothing may stay open, parked or unanswered.
        let exits = (0..PIDS.len()).map(Op::Exit);
        for op in ops.iter().cloned().chain(exits) {
            if let Op::Exit(p) = op {
                parked.retain(|_, pid| *pid != PIDS[p]);
            }
            if let Some((pid, id)) = run(&mut h, &op) {
                parked.insert(id, pid);
            }
            for (id, reply) in h.woken() {
                prop_assert!(parked.remove(&id).is_some(), "unexpected reply to {}", id);
                if reply.status == 0 {
                    let count = count_of(&reply);
                    prop_assert!(reply.bulk.is_empty() || count == reply.bulk.len() as u64);
                }
            }
        }
        prop_assert!(parked.is_empty());
        prop_assert_eq!(h.vfs.open_files(), 0);
        prop_assert_eq!(h.vfs.pipes(), 0);
    }
}

/// One step of a writer and a reader sharing a pipe.
#[derive(Clone, Debug)]
enum PipeOp {
    Write(usize),
    Read(u32),
}

fn pipe_op() -> impl Strategy<Value = PipeOp> {
    prop_oneof![
        (1usize..2 * PIPE_BUF).prop_map(PipeOp::Write),
        (1usize..64).prop_map(PipeOp::Write),
        (1u32..2 * PIPE_BUF as u32).prop_map(PipeOp::Read),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// What the reader gets is exactly what the writer wrote, in order, whatever the
    /// sizes and however often either side waits; the writer sends the rest of a
    /// write again after a short count or a wake-up, as ulib does; the pipe never
    /// holds more than `PIPE_BUF` bytes; closing the write end drains the rest and
    /// then reads EOF.
    #[test]
    fn a_pipe_delivers_the_byte_stream_in_order(ops in prop::collection::vec(pipe_op(), 1..60)) {
        let mut h = Harness::new();
        let (r, w) = h.pipe(INIT).unwrap();
        h.spawn(INIT, APP, INIT, ankh_proto::pm::SPAWN_INHERIT_FDS).unwrap();
        h.close(INIT, r).unwrap();
        h.close(APP, w).unwrap();
        let (writer, reader) = (INIT, APP);
        let mut written = Vec::new();
        let mut read = Vec::new();
        // The rest of the write in progress, not yet in the pipe.
        let mut pending: Vec<u8> = Vec::new();
        let mut writer_parked: Option<u64> = None;
        let mut reader_parked: Option<u64> = None;
        let mut next = 0u8;
        for op in &ops {
            match op {
                PipeOp::Write(len) if writer_parked.is_none() => {
                    if pending.is_empty() {
                        pending = (0..*len).map(|_| { next = next.wrapping_add(1); next }).collect();
                        written.extend_from_slice(&pending);
                    }
                    while !pending.is_empty() && writer_parked.is_none() {
                        match h.write_answer(writer, w, &pending) {
                            Answer::Now(result) => {
                                let count = count_of(&result.unwrap()) as usize;
                                prop_assert!(count > 0 && count <= pending.len());
                                prop_assert!(pending.len() > PIPE_BUF || count == pending.len(), "a small write is atomic");
                                pending.drain(..count);
                            }
                            Answer::Parked(id) => writer_parked = Some(id),
                        }
                        for (id, reply) in h.woken() {
                            // Only the reader may be woken by a write.
                            prop_assert_eq!(reader_parked.take(), Some(id));
                            read.extend_from_slice(&data_of(&reply));
                        }
                    }
                }
                PipeOp::Read(len) if reader_parked.is_none() => match h.read_answer(reader, r, *len) {
                    Answer::Now(result) => {
                        let data = data_of(&result.unwrap());
                        prop_assert!(!data.is_empty() && data.len() <= *len as usize);
                        read.extend_from_slice(&data);
                    }
                    Answer::Parked(id) => reader_parked = Some(id),
                },
                _ => continue,
            }
            prop_assert!(h.fstat(reader, r).unwrap().size <= PIPE_BUF as u64);
            for (id, reply) in h.woken() {
                if reader_parked == Some(id) {
                    reader_parked = None;
                    read.extend_from_slice(&data_of(&reply));
                } else {
                    prop_assert_eq!(writer_parked.take(), Some(id));
                    prop_assert_eq!(count_of(&reply), 0, "a woken write moved nothing");
                }
            }
            prop_assert!(writer_parked.is_none() || reader_parked.is_none());
            let delivered = written.len() - pending.len();
            prop_assert!(read.len() <= delivered);
            prop_assert_eq!(&read[..], &written[..read.len()]);
        }
        // Drain: the writer sends its rest whenever it may, the reader reads until
        // it has everything.
        for _ in 0..4 * (written.len() + 2) {
            if pending.is_empty() && read.len() == written.len() {
                break;
            }
            if writer_parked.is_none() && !pending.is_empty() {
                match h.write_answer(writer, w, &pending) {
                    Answer::Now(result) => {
                        let count = count_of(&result.unwrap()) as usize;
                        pending.drain(..count);
                    }
                    Answer::Parked(id) => writer_parked = Some(id),
                }
            } else if reader_parked.is_none() {
                match h.read_answer(reader, r, PIPE_BUF as u32) {
                    Answer::Now(result) => read.extend_from_slice(&data_of(&result.unwrap())),
                    Answer::Parked(id) => reader_parked = Some(id),
                }
            }
            for (id, reply) in h.woken() {
                if reader_parked == Some(id) {
                    reader_parked = None;
                    read.extend_from_slice(&data_of(&reply));
                } else {
                    prop_assert_eq!(writer_parked.take(), Some(id));
                }
            }
            prop_assert!(writer_parked.is_none() || reader_parked.is_none(), "both wait");
        }
        prop_assert!(pending.is_empty());
        h.close(writer, w).unwrap();
        let woken = h.woken();
        if let Some(id) = reader_parked {
            prop_assert_eq!(woken.len(), 1);
            prop_assert_eq!(woken[0].0, id);
            prop_assert_eq!(count_of(&woken[0].1), 0);
            prop_assert!(pending.is_empty());
        }
        prop_assert_eq!(&read, &written);
        prop_assert_eq!(h.read(reader, r, 10).unwrap(), b"");
    }
}
