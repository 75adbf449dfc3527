//! Pipes: a buffer of [`PIPE_BUF`] bytes between the open files of its two ends, and
//! the requests parked on it. A read of an empty pipe that still has writers waits for
//! data. A write copies what fits into the buffer (feeding parked reads as it goes)
//! and answers how much it moved, which may be less than asked; a write that can move
//! nothing waits for room, *without its data*: when room comes it is answered 0, and
//! the writer sends the rest again (ulib's `write` loops, so a program sees a blocking
//! write that moves everything, as with POSIX pipes). A write of at most `PIPE_BUF`
//! bytes goes in whole or not at all, never interleaved. So a pipe holds at most
//! `PIPE_BUF` bytes of data however large the writes, and a parked request costs a
//! few words. Closing the last writer ends parked reads with EOF; closing the last
//! reader ends parked writes with `EPIPE`.
//!
//! The pipe never talks to the kernel itself: answers to parked requests are pushed
//! onto a list of [`Wakeup`]s that the server sends once the request in hand is done.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

use ankh_proto::errno::{self, Errno};
use ankh_proto::server::Reply;
use ankh_proto::vfs::{Count, Stat, KIND_PIPE, PIPE_BUF};
use ankh_proto::wire;
use ankh_proto::Pid;

use crate::fd::End;
use crate::storage::Ino;

/// A pipe's id.
pub type PipeId = u64;

/// An answer to a parked request: its request id and the reply.
pub type Wakeup = (u64, Reply);

/// A read waiting for data.
#[derive(Clone, Debug)]
struct ParkedRead {
    request_id: u64,
    pid: Pid,
    len: usize,
}

/// A write waiting for room; its data stays with the writer.
#[derive(Clone, Debug)]
struct ParkedWrite {
    request_id: u64,
    pid: Pid,
    /// Bytes it asked to write.
    len: usize,
}

impl ParkedWrite {
    /// Free bytes that make it worth answering: all of a small (atomic) write; half a
    /// buffer for a large one, so it moves data in big pieces.
    fn room_wanted(&self) -> usize {
        room_wanted(self.len)
    }
}

/// Free bytes a write of `len` bytes waits for: all of it when it is atomic (at
/// most `PIPE_BUF`), else half a buffer.
fn room_wanted(len: usize) -> usize {
    if len <= PIPE_BUF {
        len
    } else {
        PIPE_BUF / 2
    }
}

/// How much of a write of `len` bytes may go into `room` free bytes now.
fn fits(len: usize, room: usize) -> usize {
    if len <= PIPE_BUF && room < len {
        0 // small writes are atomic: all or wait
    } else {
        len.min(room)
    }
}

/// The reply to a read or write that moved `count` bytes.
fn count_reply(count: usize, data: Vec<u8>) -> Reply {
    let count = Count {
        count: u64::try_from(count).unwrap_or(u64::MAX),
    };
    Reply::ok_with_bulk(wire::bytes(&count), data)
}

/// A pipe.
#[derive(Clone, Debug)]
pub struct Pipe {
    ino: Ino,
    buf: VecDeque<u8>,
    /// Open files of the read end.
    readers: u32,
    /// Open files of the write end.
    writers: u32,
    reads: VecDeque<ParkedRead>,
    writes: VecDeque<ParkedWrite>,
}

impl Pipe {
    fn new(ino: Ino) -> Pipe {
        Pipe {
            ino,
            buf: VecDeque::new(),
            readers: 1,
            writers: 1,
            reads: VecDeque::new(),
            writes: VecDeque::new(),
        }
    }

    /// Its status: the bytes buffered as its size.
    pub fn stat(&self) -> Stat {
        Stat {
            ino: self.ino,
            size: u64::try_from(self.buf.len()).unwrap_or(u64::MAX),
            kind: KIND_PIPE,
            nlink: 1,
        }
    }

    /// Free bytes in the buffer.
    fn room(&self) -> usize {
        PIPE_BUF.saturating_sub(self.buf.len())
    }

    fn take(&mut self, len: usize) -> Vec<u8> {
        let n = len.min(self.buf.len());
        self.buf.drain(..n).collect()
    }

    /// Reads up to `len` bytes; `None` when parked (the answer comes as a wakeup).
    pub fn read(
        &mut self,
        request_id: u64,
        pid: Pid,
        len: usize,
        woken: &mut Vec<Wakeup>,
    ) -> Option<Reply> {
        if len == 0 {
            return Some(count_reply(0, Vec::new()));
        }
        if !self.buf.is_empty() {
            let data = self.take(len);
            self.pump(woken);
            return Some(count_reply(data.len(), data));
        }
        if self.writers == 0 {
            return Some(count_reply(0, Vec::new()));
        }
        self.reads.push_back(ParkedRead {
            request_id,
            pid,
            len,
        });
        None
    }

    /// Writes what fits of `data` (feeding parked reads as room appears) and
    /// answers the count; `None` when nothing fits and the write is parked, data-less,
    /// until there is room (then it is answered a count of 0: send again).
    pub fn write(
        &mut self,
        request_id: u64,
        pid: Pid,
        data: &[u8],
        woken: &mut Vec<Wakeup>,
    ) -> Option<Reply> {
        if self.readers == 0 {
            return Some(Reply::err(errno::EPIPE));
        }
        if data.is_empty() {
            return Some(count_reply(0, Vec::new()));
        }
        let mut done = 0;
        loop {
            let n = if done == 0 {
                fits(data.len(), self.room())
            } else {
                (data.len() - done).min(self.room())
            };
            self.buf.extend(&data[done..done + n]);
            done += n;
            let served = self.serve_reads(woken);
            if done == data.len() || (n == 0 && !served) {
                break;
            }
        }
        if done > 0 {
            return Some(count_reply(done, Vec::new()));
        }
        self.writes.push_back(ParkedWrite {
            request_id,
            pid,
            len: data.len(),
        });
        None
    }

    /// Number of requests `pid` has parked on this pipe.
    pub fn parked_by(&self, pid: Pid) -> usize {
        self.reads.iter().filter(|read| read.pid == pid).count()
            + self.writes.iter().filter(|write| write.pid == pid).count()
    }

    /// Gives buffered data to parked reads; true when one was served.
    fn serve_reads(&mut self, woken: &mut Vec<Wakeup>) -> bool {
        let mut served = false;
        while !self.buf.is_empty() {
            let Some(read) = self.reads.pop_front() else {
                break;
            };
            let data = self.take(read.len);
            woken.push((read.request_id, count_reply(data.len(), data)));
            served = true;
        }
        served
    }

    /// Answers (count 0: send again) the parked writes that the free room now
    /// suits, oldest first; each one answered takes its share of the room, so the
    /// writers woken together can all be served.
    fn wake_writes(&mut self, woken: &mut Vec<Wakeup>) {
        let mut room = self.room();
        let mut kept = VecDeque::new();
        for write in self.writes.drain(..) {
            let wanted = write.room_wanted();
            if wanted <= room {
                room -= wanted;
                woken.push((write.request_id, count_reply(0, Vec::new())));
            } else {
                kept.push_back(write);
            }
        }
        self.writes = kept;
    }

    /// Serves parked requests as far as data and space allow, then ends those that can
    /// never be served (no writers: EOF; no readers: `EPIPE`).
    fn pump(&mut self, woken: &mut Vec<Wakeup>) {
        self.serve_reads(woken);
        if self.readers > 0 {
            self.wake_writes(woken);
        }
        if self.writers == 0 && self.buf.is_empty() {
            for read in self.reads.drain(..) {
                woken.push((read.request_id, count_reply(0, Vec::new())));
            }
        }
        if self.readers == 0 {
            for write in self.writes.drain(..) {
                woken.push((write.request_id, Reply::err(errno::EPIPE)));
            }
            self.buf.clear();
        }
    }

    /// Forgets the requests `pid` parked (it ended: nobody waits for the answers).
    pub fn drop_parked(&mut self, pid: Pid, woken: &mut Vec<Wakeup>) {
        self.reads.retain(|read| read.pid != pid);
        self.writes.retain(|write| write.pid != pid);
        self.pump(woken);
    }

    /// An open file of one end closed.
    fn close(&mut self, end: End, woken: &mut Vec<Wakeup>) {
        match end {
            End::Read => self.readers = self.readers.saturating_sub(1),
            End::Write => self.writers = self.writers.saturating_sub(1),
        }
        self.pump(woken);
    }

    /// Checks the pipe's invariants (tests).
    #[cfg(test)]
    pub fn check(&self, readers: u32, writers: u32) {
        assert_eq!((self.readers, self.writers), (readers, writers));
        assert!(self.buf.len() <= PIPE_BUF);
        assert!(
            self.reads.is_empty() || self.buf.is_empty(),
            "reads parked on data"
        );
        assert!(
            self.reads.is_empty() || self.writers > 0,
            "reads parked without writers"
        );
        assert!(
            self.writes.is_empty() || self.readers > 0,
            "writes parked without readers"
        );
    }
}

/// All pipes.
#[derive(Clone, Debug, Default)]
pub struct Pipes {
    pipes: BTreeMap<PipeId, Pipe>,
    next: PipeId,
}

impl Pipes {
    /// No pipes.
    pub fn new() -> Pipes {
        Pipes::default()
    }

    /// A new pipe with one reader and one writer (the caller makes their open files).
    pub fn create(&mut self, ino: Ino) -> PipeId {
        let id = self.next;
        self.next = self.next.wrapping_add(1);
        self.pipes.insert(id, Pipe::new(ino));
        id
    }

    /// A pipe (`EBADF` when it is gone).
    pub fn get_mut(&mut self, id: PipeId) -> Result<&mut Pipe, Errno> {
        self.pipes.get_mut(&id).ok_or(errno::EBADF)
    }

    /// An open file of one end closed; the pipe goes when both ends have none.
    pub fn close(&mut self, id: PipeId, end: End, woken: &mut Vec<Wakeup>) {
        if let Some(pipe) = self.pipes.get_mut(&id) {
            pipe.close(end, woken);
            if pipe.readers == 0 && pipe.writers == 0 {
                self.pipes.remove(&id);
            }
        }
    }

    /// Number of requests `pid` has parked on any pipe.
    pub fn parked_by(&self, pid: Pid) -> usize {
        self.pipes.values().map(|pipe| pipe.parked_by(pid)).sum()
    }

    /// Forgets every request `pid` parked.
    pub fn drop_parked(&mut self, pid: Pid, woken: &mut Vec<Wakeup>) {
        for pipe in self.pipes.values_mut() {
            pipe.drop_parked(pid, woken);
        }
    }

    /// Every pipe (tests: invariants).
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = (&PipeId, &Pipe)> {
        self.pipes.iter()
    }

    /// Pipes in use.
    pub fn len(&self) -> usize {
        self.pipes.len()
    }

    /// True when there is no pipe.
    pub fn is_empty(&self) -> bool {
        self.pipes.is_empty()
    }
}
