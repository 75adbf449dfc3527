//! Pipes: data, parked reads and writes, EOF, EPIPE, atomicity.

use super::*;

/// The one deferred reply sent since the last look, to `id`.
fn woken_one(h: &mut Harness, id: u64) -> Reply {
    let mut woken = h.woken();
    assert_eq!(woken.len(), 1, "{woken:?}");
    let (got, reply) = woken.pop().unwrap();
    assert_eq!(got, id);
    reply
}

#[test]
fn data_flows_through_a_pipe() {
    let mut h = Harness::new();
    let (r, w) = h.pipe(APP).unwrap();
    assert_eq!((r, w), (0, 1));
    assert_eq!(h.write(APP, w, b"hello").unwrap(), 5);
    assert_eq!(h.fstat(APP, r).unwrap().size, 5);
    assert_eq!(h.fstat(APP, w).unwrap().kind, KIND_PIPE);
    assert_eq!(h.read(APP, r, 3).unwrap(), b"hel");
    assert_eq!(h.read(APP, r, 30).unwrap(), b"lo");
    assert_eq!(h.read(APP, r, 0).unwrap(), b"");
    assert_eq!(h.write(APP, w, b"").unwrap(), 0);
    assert_eq!(h.fstat(APP, r).unwrap().ino, h.fstat(APP, w).unwrap().ino);
}

#[test]
fn pipes_do_not_seek() {
    let mut h = Harness::new();
    let (r, w) = h.pipe(APP).unwrap();
    assert_eq!(h.lseek(APP, r, 0, SEEK_SET), Err(errno::ESPIPE));
    assert_eq!(h.pread(APP, r, 1, 0), Err(errno::ESPIPE));
    assert_eq!(h.pwrite(APP, w, b"x", 0), Err(errno::ESPIPE));
}

#[test]
fn the_wrong_end_is_ebadf() {
    let mut h = Harness::new();
    let (r, w) = h.pipe(APP).unwrap();
    assert_eq!(h.write(APP, r, b"x"), Err(errno::EBADF));
    assert_eq!(h.read(APP, w, 1), Err(errno::EBADF));
}

#[test]
fn a_read_of_an_empty_pipe_waits_for_a_write() {
    let mut h = Harness::new();
    let (r, w) = h.pipe(INIT).unwrap();
    h.spawn(INIT, APP, INIT, ankh_proto::pm::SPAWN_INHERIT_FDS)
        .unwrap();
    let Answer::Parked(id) = h.read_answer(APP, r, 10) else {
        panic!("the read did not park");
    };
    assert!(h.woken().is_empty());
    assert_eq!(h.write(INIT, w, b"ping").unwrap(), 4);
    let reply = woken_one(&mut h, id);
    assert_eq!(data_of(&reply), b"ping");
    assert_eq!(h.fstat(INIT, r).unwrap().size, 0);
}

#[test]
fn parked_reads_are_served_in_order() {
    let mut h = Harness::new();
    let (r, w) = h.pipe(INIT).unwrap();
    h.spawn(INIT, APP, INIT, ankh_proto::pm::SPAWN_INHERIT_FDS)
        .unwrap();
    h.spawn(INIT, OTHER, INIT, ankh_proto::pm::SPAWN_INHERIT_FDS)
        .unwrap();
    let Answer::Parked(first) = h.read_answer(APP, r, 3) else {
        panic!()
    };
    let Answer::Parked(second) = h.read_answer(OTHER, r, 10) else {
        panic!()
    };
    h.write(INIT, w, b"abcdef").unwrap();
    let woken = h.woken();
    assert_eq!(woken.len(), 2);
    assert_eq!((woken[0].0, data_of(&woken[0].1)), (first, b"abc".to_vec()));
    assert_eq!(
        (woken[1].0, data_of(&woken[1].1)),
        (second, b"def".to_vec())
    );
}

#[test]
fn the_last_writer_closing_gives_eof() {
    let mut h = Harness::new();
    let (r, w) = h.pipe(APP).unwrap();
    let w2 = h.dup(APP, w).unwrap();
    h.spawn(INIT, OTHER, APP, ankh_proto::pm::SPAWN_INHERIT_FDS)
        .unwrap();
    let Answer::Parked(id) = h.read_answer(OTHER, r, 10) else {
        panic!()
    };
    h.close(APP, w).unwrap();
    h.close(APP, w2).unwrap();
    // The child still holds the write end (shared open file).
    assert!(h.woken().is_empty());
    h.close(OTHER, w).unwrap();
    assert!(h.woken().is_empty());
    h.close(OTHER, w2).unwrap();
    let reply = woken_one(&mut h, id);
    assert_eq!(count_of(&reply), 0);
    assert!(reply.bulk.is_empty());
    // Later reads see EOF at once, after the remaining data.
    assert_eq!(h.read(APP, r, 10).unwrap(), b"");
}

#[test]
fn data_is_read_before_eof() {
    let mut h = Harness::new();
    let (r, w) = h.pipe(APP).unwrap();
    h.write(APP, w, b"tail").unwrap();
    h.close(APP, w).unwrap();
    assert_eq!(h.read(APP, r, 2).unwrap(), b"ta");
    assert_eq!(h.read(APP, r, 9).unwrap(), b"il");
    assert_eq!(h.read(APP, r, 9).unwrap(), b"");
}

#[test]
fn writing_without_readers_is_epipe() {
    let mut h = Harness::new();
    let (r, w) = h.pipe(APP).unwrap();
    h.write(APP, w, b"lost").unwrap();
    h.close(APP, r).unwrap();
    assert_eq!(h.write(APP, w, b"x"), Err(errno::EPIPE));
    assert_eq!(h.fstat(APP, w).unwrap().size, 0);
    h.close(APP, w).unwrap();
    assert_eq!(h.vfs.pipes(), 0);
    assert_eq!(h.vfs.open_files(), 0);
}

#[test]
fn a_large_write_moves_what_fits_then_waits_for_room_without_its_data() {
    let mut h = Harness::new();
    let (r, w) = h.pipe(INIT).unwrap();
    h.spawn(INIT, APP, INIT, ankh_proto::pm::SPAWN_INHERIT_FDS)
        .unwrap();
    let data: Vec<u8> = (0..3 * PIPE_BUF).map(|i| (i % 251) as u8).collect();
    // What fits goes in and is answered at once: a short count.
    assert_eq!(h.write(APP, w, &data).unwrap(), PIPE_BUF as u64);
    assert_eq!(h.fstat(INIT, r).unwrap().size, PIPE_BUF as u64);
    // The rest, sent again, finds no room: it waits, and VFS keeps none of it.
    let Answer::Parked(id) = h.write_answer(APP, w, &data[PIPE_BUF..]) else {
        panic!("the write did not park");
    };
    assert_eq!(h.fstat(INIT, r).unwrap().size, PIPE_BUF as u64);
    let first = h.read(INIT, r, 1000).unwrap();
    assert_eq!(first, data[..1000]);
    assert!(
        h.woken().is_empty(),
        "1000 bytes is less than half a buffer"
    );
    let second = h.read(INIT, r, 2000).unwrap();
    assert_eq!(second, data[1000..3000]);
    // Room for half a buffer: the writer is told to send again.
    assert_eq!(count_of(&woken_one(&mut h, id)), 0);
    assert_eq!(h.write(APP, w, &data[PIPE_BUF..]).unwrap(), 3000);
    let rest = h.read(INIT, r, IO_MAX as u32).unwrap();
    assert_eq!(rest, data[3000..PIPE_BUF + 3000]);
}

#[test]
fn a_megabyte_write_never_makes_vfs_hold_more_than_a_buffer() {
    let mut h = Harness::new();
    let (r, w) = h.pipe(INIT).unwrap();
    h.spawn(INIT, APP, INIT, ankh_proto::pm::SPAWN_INHERIT_FDS)
        .unwrap();
    let data: Vec<u8> = (0..IO_MAX).map(|i| (i % 253) as u8).collect();
    let mut sent = 0;
    let mut got = Vec::new();
    // The writer loops as ulib does; the reader drains after every answer.
    while sent < data.len() {
        match h.write_answer(APP, w, &data[sent..]) {
            Answer::Now(reply) => sent += count_of(&reply.unwrap()) as usize,
            Answer::Parked(id) => loop {
                got.extend(h.read(INIT, r, 3000).unwrap());
                let woken = h.woken();
                if let [(answered, reply)] = woken.as_slice() {
                    assert_eq!((*answered, count_of(reply)), (id, 0));
                    break;
                }
                assert!(woken.is_empty());
            },
        }
        assert!(h.fstat(INIT, r).unwrap().size <= PIPE_BUF as u64);
        check(&h.vfs, &h.kernel);
    }
    got.extend(h.read(INIT, r, IO_MAX as u32).unwrap());
    assert_eq!(got, data);
}

#[test]
fn a_large_write_is_fed_to_a_parked_reader_piece_by_piece() {
    let mut h = Harness::new();
    let (r, w) = h.pipe(INIT).unwrap();
    h.spawn(INIT, APP, INIT, ankh_proto::pm::SPAWN_INHERIT_FDS)
        .unwrap();
    let Answer::Parked(read) = h.read_answer(APP, r, 100) else {
        panic!()
    };
    let data = alloc::vec![5u8; PIPE_BUF + 50];
    // The reader takes 100 bytes, making room for the whole write.
    assert_eq!(h.write(INIT, w, &data).unwrap(), data.len() as u64);
    assert_eq!(data_of(&woken_one(&mut h, read)).len(), 100);
    assert_eq!(h.fstat(INIT, r).unwrap().size, PIPE_BUF as u64 - 50);
}

#[test]
fn small_writes_are_atomic() {
    let mut h = Harness::new();
    let (r, w) = h.pipe(INIT).unwrap();
    h.spawn(INIT, APP, INIT, ankh_proto::pm::SPAWN_INHERIT_FDS)
        .unwrap();
    h.write(INIT, w, &alloc::vec![1; PIPE_BUF - 150]).unwrap();
    let Answer::Parked(id) = h.write_answer(APP, w, &[2; 200]) else {
        panic!()
    };
    assert_eq!(h.fstat(INIT, r).unwrap().size, PIPE_BUF as u64 - 150);
    h.read(INIT, r, 40).unwrap();
    assert!(h.woken().is_empty(), "190 bytes of room is not enough");
    h.read(INIT, r, 10).unwrap();
    assert_eq!(
        count_of(&woken_one(&mut h, id)),
        0,
        "room for all 200: send again"
    );
    assert_eq!(h.write(APP, w, &[2; 200]).unwrap(), 200);
    assert_eq!(h.fstat(INIT, r).unwrap().size, PIPE_BUF as u64);
}

#[test]
fn the_last_reader_closing_ends_parked_writes() {
    let mut h = Harness::new();
    let (r, w) = h.pipe(INIT).unwrap();
    h.spawn(INIT, APP, INIT, ankh_proto::pm::SPAWN_INHERIT_FDS)
        .unwrap();
    h.spawn(INIT, OTHER, INIT, ankh_proto::pm::SPAWN_INHERIT_FDS)
        .unwrap();
    h.write(INIT, w, &alloc::vec![0; PIPE_BUF]).unwrap();
    let Answer::Parked(small) = h.write_answer(APP, w, b"x") else {
        panic!()
    };
    // A large write from an empty-room start: parks with nothing written.
    let Answer::Parked(large) = h.write_answer(OTHER, w, &alloc::vec![1; 3 * PIPE_BUF]) else {
        panic!()
    };
    h.close(INIT, r).unwrap();
    h.close(APP, r).unwrap();
    assert!(h.woken().is_empty());
    h.close(OTHER, r).unwrap();
    let woken = h.woken();
    assert_eq!(woken.len(), 2);
    assert_eq!(woken[0], (small, Reply::err(errno::EPIPE)));
    assert_eq!(woken[1], (large, Reply::err(errno::EPIPE)));
}

#[test]
fn a_process_parks_at_most_pipe_parked_max_requests() {
    let mut h = Harness::new();
    let (r, _w) = h.pipe(INIT).unwrap();
    h.spawn(INIT, APP, INIT, ankh_proto::pm::SPAWN_INHERIT_FDS)
        .unwrap();
    for _ in 0..ankh_proto::vfs::PIPE_PARKED_MAX {
        let Answer::Parked(_) = h.read_answer(APP, r, 10) else {
            panic!()
        };
    }
    let Answer::Now(refused) = h.read_answer(APP, r, 10) else {
        panic!("parked one too many")
    };
    assert_eq!(refused, Err(errno::EAGAIN));
    // Another process is not affected.
    let Answer::Parked(_) = h.read_answer(INIT, r, 10) else {
        panic!()
    };
}

#[test]
fn parked_requests_of_an_exiting_process_are_dropped() {
    let mut h = Harness::new();
    let (r, w) = h.pipe(INIT).unwrap();
    h.spawn(INIT, APP, INIT, ankh_proto::pm::SPAWN_INHERIT_FDS)
        .unwrap();
    h.spawn(INIT, OTHER, INIT, ankh_proto::pm::SPAWN_INHERIT_FDS)
        .unwrap();
    let Answer::Parked(_) = h.read_answer(APP, r, 10) else {
        panic!()
    };
    let Answer::Parked(other) = h.read_answer(OTHER, r, 10) else {
        panic!()
    };
    h.exit(INIT, APP).unwrap();
    assert!(h.woken().is_empty());
    h.write(INIT, w, b"data").unwrap();
    // Only the live reader gets it.
    assert_eq!(data_of(&woken_one(&mut h, other)), b"data");
}

#[test]
fn a_pipe_needs_two_descriptors() {
    let mut h = Harness::new();
    h.put("/f", b"");
    for _ in 0..OPEN_MAX - 1 {
        h.open(APP, "/f", O_RDONLY).unwrap();
    }
    assert_eq!(h.pipe(APP), Err(errno::EMFILE));
    assert_eq!(h.vfs.pipes(), 0);
    assert_eq!(h.vfs.open_files(), OPEN_MAX - 1);
}

#[test]
fn a_process_exiting_with_the_write_end_wakes_the_reader() {
    let mut h = Harness::new();
    let (r, w) = h.pipe(INIT).unwrap();
    h.spawn(INIT, APP, INIT, ankh_proto::pm::SPAWN_INHERIT_FDS)
        .unwrap();
    h.close(INIT, w).unwrap();
    h.close(APP, r).unwrap();
    let Answer::Parked(id) = h.read_answer(INIT, r, 10) else {
        panic!()
    };
    h.write(APP, w, b"bye").unwrap();
    assert_eq!(data_of(&woken_one(&mut h, id)), b"bye");
    let Answer::Parked(id) = h.read_answer(INIT, r, 10) else {
        panic!()
    };
    h.exit(INIT, APP).unwrap();
    assert_eq!(count_of(&woken_one(&mut h, id)), 0);
}
