//! One client of the control socket: request lines in, reply lines out, on a
//! non-blocking stream driven by the control loop. What a client can make the loop
//! hold is bounded: one request line ([`MAX_LINE`]) plus one read, and the replies to
//! one line at a time (no line is read while replies wait to be written).

use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Instant;

use event_manager::EventSet;

use super::{ControlHub, Reply, MAX_LINE};

/// Bytes read from the stream at a time.
const READ_CHUNK: usize = 4096;

/// Steps (a read, a line answered) per wake-up, so that one busy client does not
/// keep the others waiting.
const STEPS_PER_WAKE: usize = 64;

/// What the loop does with a connection after serving it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Next {
    /// Wait for these events, then serve it again.
    Wait(EventSet),
    /// Close it.
    Close,
}

/// One client.
#[derive(Debug)]
pub(super) struct Connection {
    stream: UnixStream,
    /// Bytes read, not yet answered: at most one line and one read.
    inbox: Vec<u8>,
    /// Reply bytes not yet written.
    outbox: Vec<u8>,
    /// The client will send nothing more.
    end_of_input: bool,
    /// Close once the outbox is written (after a too-long line, or at the end).
    closing: bool,
    /// When the client last sent or took bytes.
    last_active: Instant,
}

impl Connection {
    /// Serves `stream`, which must be non-blocking.
    pub(super) fn new(stream: UnixStream) -> Connection {
        Connection {
            stream,
            inbox: Vec::new(),
            outbox: Vec::new(),
            end_of_input: false,
            closing: false,
            last_active: Instant::now(),
        }
    }

    /// When the client last sent or took bytes.
    pub(super) fn last_active(&self) -> Instant {
        self.last_active
    }

    /// The stream, to register it with the loop.
    pub(super) fn stream(&self) -> &UnixStream {
        &self.stream
    }

    /// Does what can be done without blocking: write pending replies, answer
    /// complete lines, read more.
    pub(super) fn serve(&mut self, hub: &ControlHub) -> Next {
        for _ in 0..STEPS_PER_WAKE {
            match self.step(hub) {
                Ok(Some(next)) => return next,
                Ok(None) => {}
                // The client went away (a reset, a broken pipe): nothing to answer.
                Err(_) => return Next::Close,
            }
        }
        // More to do: the stream is writable at once, so the loop comes back soon,
        // after the other clients' turns.
        Next::Wait(EventSet::IN | EventSet::OUT)
    }

    /// One step; `Some` when the connection must wait or close.
    fn step(&mut self, hub: &ControlHub) -> std::io::Result<Option<Next>> {
        if !self.outbox.is_empty() {
            return match self.stream.write(&self.outbox) {
                Ok(written) => {
                    self.outbox.drain(..written);
                    self.last_active = Instant::now();
                    Ok(None)
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(Some(Next::Wait(EventSet::OUT))),
                Err(e) if e.kind() == ErrorKind::Interrupted => Ok(None),
                Err(e) => Err(e),
            };
        }
        if self.closing {
            return Ok(Some(Next::Close));
        }
        if let Some(end) = self.inbox.iter().position(|&b| b == b'\n') {
            if end > MAX_LINE {
                self.refuse_long_line();
            } else {
                let line: Vec<u8> = self.inbox.drain(..=end).collect();
                self.outbox = hub.answer(&line[..end]).into_bytes();
            }
            return Ok(None);
        }
        if self.inbox.len() > MAX_LINE {
            self.refuse_long_line();
            return Ok(None);
        }
        if self.end_of_input {
            // A last line without its newline is still a request.
            if !self.inbox.is_empty() {
                let line = std::mem::take(&mut self.inbox);
                self.outbox = hub.answer(&line).into_bytes();
            }
            self.closing = true;
            return Ok(None);
        }
        let start = self.inbox.len();
        // Exact: the inbox never holds more than a line and one read.
        self.inbox.reserve_exact(READ_CHUNK);
        self.inbox.resize(start + READ_CHUNK, 0);
        let read = self.stream.read(&mut self.inbox[start..]);
        self.inbox.truncate(start + *read.as_ref().unwrap_or(&0));
        match read {
            Ok(0) => self.end_of_input = true,
            Ok(_) => self.last_active = Instant::now(),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                return Ok(Some(Next::Wait(EventSet::IN)))
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        Ok(None)
    }

    /// Answers a line longer than [`MAX_LINE`] with an error, and closes once that is
    /// written: the rest of the line is never read.
    fn refuse_long_line(&mut self) {
        self.inbox.clear();
        self.outbox = Reply::Refused(format!(
            "request line longer than {MAX_LINE} bytes; closing the connection"
        ))
        .to_line()
        .into_bytes();
        self.closing = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves `connection` until it waits for input or closes, as the loop would.
    fn serve_until_idle(connection: &mut Connection, hub: &ControlHub) -> Next {
        loop {
            match connection.serve(hub) {
                Next::Wait(events) if events.contains(EventSet::OUT) => {}
                next => return next,
            }
        }
    }

    fn read_all(client: &mut UnixStream) -> String {
        let mut text = String::new();
        client.read_to_string(&mut text).unwrap();
        text
    }

    #[test]
    fn lines_are_answered_in_order_and_a_last_line_without_newline_too() {
        let hub = ControlHub::new(["ds"]);
        let (mut client, server) = UnixStream::pair().unwrap();
        server.set_nonblocking(true).unwrap();
        let mut connection = Connection::new(server);
        client
            .write_all(b"{\"cmd\":\"status\"}\nnot json\n{\"cmd\":\"kill\",\"domain\":\"ds\"}")
            .unwrap();
        assert_eq!(
            serve_until_idle(&mut connection, &hub),
            Next::Wait(EventSet::IN)
        );
        client.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(serve_until_idle(&mut connection, &hub), Next::Close);
        drop(connection);
        let replies = read_all(&mut client);
        let replies: Vec<serde_json::Value> = replies
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(replies.len(), 3, "{replies:?}");
        assert_eq!(replies[0]["domains"][0]["name"], "ds");
        assert_eq!(replies[1]["ok"], false);
        assert_eq!(replies[2], serde_json::json!({ "ok": true }));
    }

    #[test]
    fn a_line_longer_than_the_bound_is_refused_and_the_connection_closed() {
        let hub = ControlHub::new(["ds"]);
        for line_end in [&b""[..], b"\n"] {
            let (mut client, server) = UnixStream::pair().unwrap();
            server.set_nonblocking(true).unwrap();
            let mut connection = Connection::new(server);
            // A status request padded past the bound: never parsed, never answered.
            let mut line = b"{\"cmd\":\"status\"}".to_vec();
            line.resize(MAX_LINE + 1, b' ');
            line.extend_from_slice(line_end);
            // It fits in the socket's buffer: written before the server reads.
            client.write_all(&line).unwrap();
            assert_eq!(serve_until_idle(&mut connection, &hub), Next::Close);
            assert!(connection.inbox.capacity() <= MAX_LINE + 2 * READ_CHUNK);
            drop(connection);
            let reply = read_all(&mut client);
            assert_eq!(reply.lines().count(), 1, "{reply}");
            let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
            assert_eq!(reply["ok"], false);
            assert!(
                reply["error"]
                    .as_str()
                    .unwrap()
                    .contains("longer than 65536"),
                "{reply}"
            );
        }
    }
}
