//! Pipes: a buffer of [`PIPE_BUF`] bytes between the open files of its two ends, and
//! the requests parked on it. A read of an empty pipe that still has writers waits for
//! data; a write to a full pipe that still has readers waits for space (writing what
//! fits first; a write of at most `PIPE_BUF` bytes goes in whole, never interleaved).
//! Closing the last writer ends parked reads with EOF; closing the last reader ends
//! parked writes with `EPIPE` (or with the count already written, as Linux does).
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

/// A write waiting for space.
#[derive(Clone, Debug)]
struct ParkedWrite {
    request_id: u64,
    pid: Pid,
    data: Vec<u8>,
    /// Bytes of `data` already in the buffer.
    done: usize,
}

impl ParkedWrite {
    /// How much of the rest may go into `room` free bytes now.
    fn fits(&self, room: usize) -> usize {
        fits(self.data.len(), self.done, room)
    }
}

/// How much more of a write of `total` bytes, `done` of them already in the buffer,
/// may go into `room` free bytes now.
fn fits(total: usize, done: usize, room: usize) -> usize {
    let rest = total - done;
    if total <= PIPE_BUF && room < rest {
        0 // small writes are atomic: all or wait
    } else {
        rest.min(room)
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

    /// Writes `data`; `None` when (some of) it is parked until readers make room.
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
        // Earlier parked writes go first; otherwise fill and feed parked readers
        // until this write is done or the pipe stays full.
        let mut done = 0;
        if self.writes.is_empty() {
            loop {
                let n = fits(data.len(), done, self.room());
                self.buf.extend(&data[done..done + n]);
                done += n;
                let served = self.serve_reads(woken);
                if done == data.len() {
                    return Some(count_reply(done, Vec::new()));
                }
                if n == 0 && !served {
                    break;
                }
            }
        }
        self.writes.push_back(ParkedWrite {
            request_id,
            pid,
            data: data.to_vec(),
            done,
        });
        None
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

    /// Moves parked writes into free space; true when any byte moved.
    fn serve_writes(&mut self, woken: &mut Vec<Wakeup>) -> bool {
        let mut moved = false;
        loop {
            let room = self.room();
            let Some(write) = self.writes.front_mut() else {
                break;
            };
            let n = write.fits(room);
            if n == 0 {
                break;
            }
            self.buf.extend(&write.data[write.done..write.done + n]);
            write.done += n;
            moved = true;
            if write.done == write.data.len() {
                let done = write.done;
                let request_id = write.request_id;
                self.writes.pop_front();
                woken.push((request_id, count_reply(done, Vec::new())));
            }
        }
        moved
    }

    /// Serves parked requests as far as data and space allow, then ends those that can
    /// never be served (no writers: EOF; no readers: `EPIPE`).
    fn pump(&mut self, woken: &mut Vec<Wakeup>) {
        while self.serve_reads(woken) | self.serve_writes(woken) {}
        if self.writers == 0 && self.buf.is_empty() {
            for read in self.reads.drain(..) {
                woken.push((read.request_id, count_reply(0, Vec::new())));
            }
        }
        if self.readers == 0 {
            for write in self.writes.drain(..) {
                let reply = match write.done {
                    0 => Reply::err(errno::EPIPE),
                    done => count_reply(done, Vec::new()),
                };
                woken.push((write.request_id, reply));
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
        if let Some(write) = self.writes.front() {
            assert_eq!(write.fits(self.room()), 0, "writes parked on space");
        }
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
