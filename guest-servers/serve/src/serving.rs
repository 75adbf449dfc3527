//! [`Serving`]: the server loop.

use ankh_proto::server::{Handled, Server};
use ankh_proto::Errno;

use crate::kernel::checked;
use crate::{Message, Peers, Port, PortKernel};

/// A server running over a port: [`Serving::start`] once, then [`Serving::step`] for
/// each message (`ankh_serve::run` does exactly that, forever).
#[derive(Debug)]
pub struct Serving<P: Port, S: Server> {
    /// The domain's IPC.
    port: P,
    /// Where the other servers are.
    peers: Peers,
    /// The server.
    server: S,
    /// The message received last.
    message: Message,
    /// What the last wait produced: `Ok` when `message` holds a message to handle.
    pending: Result<(), Errno>,
    /// Whether [`Serving::start`] waited for the first message.
    started: bool,
}

impl<P: Port, S: Server> Serving<P, S> {
    /// A loop serving `server` over `port`.
    pub fn new(port: P, peers: Peers, server: S) -> Serving<P, S> {
        Serving {
            port,
            peers,
            server,
            message: Message::new(),
            pending: Ok(()),
            started: false,
        }
    }

    /// Runs the server's `start` (which may call other servers), then waits for the
    /// first message.
    pub fn start(&mut self) {
        self.server
            .start(&mut PortKernel::new(&mut self.port, &self.peers));
        self.pending = self.port.receive(&mut self.message);
        self.started = true;
    }

    /// Handles the message received last and waits for the next one: a request the
    /// server answers at once is answered in the same exit as the wait (`reply_recv`);
    /// after a deferred request, a one-way message or a failure the VMM delivered, the
    /// loop just waits (`receive`).
    ///
    /// # Panics
    ///
    /// Before [`Serving::start`].
    pub fn step(&mut self) {
        assert!(self.started, "serve: step before start");
        let mut answer = None;
        if self.pending.is_ok() {
            let request = self.message.request();
            let mut kernel = PortKernel::new(&mut self.port, &self.peers);
            let handled = self.server.handle(&request, &mut kernel);
            if let (Handled::Reply(reply), true) = (handled, self.message.is_request()) {
                answer = Some((self.message.request_id, reply));
            }
        }
        self.pending = match answer {
            Some((request_id, reply)) => {
                let (status, payload, bulk) = checked(&reply);
                self.port
                    .reply_recv(request_id, status, payload, bulk, &mut self.message)
            }
            None => self.port.receive(&mut self.message),
        };
    }

    /// The server (for tests and statistics).
    pub fn server(&self) -> &S {
        &self.server
    }

    /// The port (for tests).
    pub fn port(&self) -> &P {
        &self.port
    }
}
