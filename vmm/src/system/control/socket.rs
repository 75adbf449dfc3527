//! The control socket, served on one event loop (`event-manager` over epoll) by one
//! thread: the listener, every client, a stop `EventFd` and, for `ankh up`, the exit
//! signals. The socket file is created at a free path only, and removed when the
//! server stops or the process dies of an exit signal.

use std::collections::HashMap;
use std::fs::FileType;
use std::io::{ErrorKind, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use event_manager::{
    EventManager, EventOps, EventSet, Events, MutEventSubscriber, SubscriberId, SubscriberOps,
};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};
use vmm_sys_util::timerfd::TimerFd;

use super::connection::{Connection, Next};
use super::signals::{self, BlockedSignals, ExitSignalFd};
use super::{ControlHub, Reply, IDLE_LIMIT, MAX_CONNECTIONS};

/// What the control loop does with SIGINT, SIGTERM and SIGHUP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitSignals {
    /// Nothing: they act as the process set them up (a library's embedder decides).
    Leave,
    /// Remove the socket, then die of the signal as without the socket (`ankh up`).
    RemoveSocketAndDie,
}

/// Why the control socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ControlSocketError {
    /// Something other than a socket is at the path: it is left as it is.
    #[error("control socket {}: {what} is there, and is not replaced; give a new path", path.display())]
    NotASocket {
        /// The path.
        path: PathBuf,
        /// What is there (`a regular file`, `a directory`, ...).
        what: &'static str,
    },
    /// A live socket is at the path: some process serves it.
    #[error("control socket {}: in use by a running process (another `ankh up --control`?)", path.display())]
    InUse {
        /// The path.
        path: PathBuf,
    },
    /// The path could not be looked at, or the stale socket there not removed.
    #[error("control socket {}: cannot check what is there", path.display())]
    Inspect {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The socket could not be created.
    #[error("control socket {}: cannot create it", path.display())]
    Bind {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The event loop or its thread could not be set up.
    #[error("control socket: cannot start its event loop")]
    Start(#[source] std::io::Error),
}

impl ControlSocketError {
    /// Whether the person who gave the path can fix it (a wrong or busy path), rather
    /// than the host.
    pub fn is_usage(&self) -> bool {
        match self {
            ControlSocketError::NotASocket { .. } | ControlSocketError::InUse { .. } => true,
            ControlSocketError::Inspect { source, .. }
            | ControlSocketError::Bind { source, .. } => {
                matches!(
                    source.kind(),
                    ErrorKind::NotFound
                        | ErrorKind::PermissionDenied
                        | ErrorKind::InvalidInput
                        | ErrorKind::NotADirectory
                        | ErrorKind::AddrInUse
                )
            }
            ControlSocketError::Start(_) => false,
        }
    }
}

/// The socket file this process created. It is removed only while it is still that
/// file: a file someone put at the path since is left alone.
#[derive(Clone, Debug)]
struct SocketFile {
    path: PathBuf,
    device: u64,
    inode: u64,
}

impl SocketFile {
    fn remove(&self) {
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == (self.device, self.inode) {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// A running control socket. Dropping it stops the loop, closes every connection and
/// removes the socket file.
#[derive(Debug)]
pub struct ControlServer {
    socket: SocketFile,
    stop: EventFd,
    thread: Option<JoinHandle<()>>,
    blocked: Option<BlockedSignals>,
}

/// Everything on the loop is one of these.
type Subscriber = Box<dyn MutEventSubscriber + Send>;

impl ControlServer {
    /// Opens the control socket at `path` for `hub` and serves it on a thread of its
    /// own. `path` must be free, or hold a stale socket (nothing listens on it), which
    /// is replaced; anything else is refused and left as it is.
    ///
    /// With [`ExitSignals::RemoveSocketAndDie`], the exit signals are blocked in the
    /// calling thread: call this before starting the threads that must not take them
    /// (the vCPU threads), and drop the server on the same thread.
    pub fn start(
        hub: Arc<ControlHub>,
        path: &Path,
        signals: ExitSignals,
    ) -> Result<ControlServer, ControlSocketError> {
        // Blocked before the socket file exists: whoever sees the file and sends a
        // signal finds it removed.
        let exit_signals = match signals {
            ExitSignals::Leave => None,
            ExitSignals::RemoveSocketAndDie => {
                Some(ExitSignalFd::open().map_err(ControlSocketError::Start)?)
            }
        };
        let blocked = exit_signals.as_ref().map(ExitSignalFd::blocked);
        let server = Self::open(hub, path, exit_signals, IDLE_LIMIT);
        if let (Err(_), Some(blocked)) = (&server, blocked) {
            blocked.unblock();
        }
        server
    }

    fn open(
        hub: Arc<ControlHub>,
        path: &Path,
        exit_signals: Option<ExitSignalFd>,
        idle_limit: Duration,
    ) -> Result<ControlServer, ControlSocketError> {
        claim(path)?;
        let bind_error = |source| ControlSocketError::Bind {
            path: path.to_owned(),
            source,
        };
        let listener = UnixListener::bind(path).map_err(bind_error)?;
        let meta = std::fs::symlink_metadata(path).map_err(bind_error)?;
        let socket = SocketFile {
            path: path.to_owned(),
            device: meta.dev(),
            inode: meta.ino(),
        };
        Self::serve(hub, listener, &socket, exit_signals, idle_limit).map_err(|source| {
            socket.remove();
            ControlSocketError::Start(source)
        })
    }

    fn serve(
        hub: Arc<ControlHub>,
        listener: UnixListener,
        socket: &SocketFile,
        exit_signals: Option<ExitSignalFd>,
        idle_limit: Duration,
    ) -> std::io::Result<ControlServer> {
        listener.set_nonblocking(true)?;
        let mut manager = EventManager::<Subscriber>::new().map_err(std::io::Error::other)?;
        let listener_fd = listener.as_raw_fd();
        // Idle clients are looked for a few times per limit: one is closed between
        // the limit and 1.25 times it.
        let mut idle_timer = TimerFd::new()?;
        let period = idle_limit / 4;
        idle_timer.reset(period, Some(period))?;
        let timer_fd = idle_timer.as_raw_fd();
        let clients = Clients {
            hub,
            listener,
            connections: HashMap::new(),
            idle_timer,
            idle_limit,
        };
        let id = watch(&mut manager, Box::new(clients), listener_fd)?;
        manager
            .event_ops(id)
            .and_then(|mut ops| ops.add(Events::new_raw(timer_fd, EventSet::IN)))
            .map_err(std::io::Error::other)?;
        let stop = EventFd::new(EFD_NONBLOCK)?;
        let stopped = Arc::new(AtomicBool::new(false));
        let stop_fd = stop.as_raw_fd();
        let on_stop = Stop {
            event: stop.try_clone()?,
            stopped: Arc::clone(&stopped),
        };
        watch(&mut manager, Box::new(on_stop), stop_fd)?;
        let blocked = exit_signals.as_ref().map(ExitSignalFd::blocked);
        if let Some(signals) = exit_signals {
            let fd = signals.as_raw_fd();
            let on_signal = Die {
                signals,
                socket: socket.clone(),
            };
            watch(&mut manager, Box::new(on_signal), fd)?;
        }
        let thread = std::thread::Builder::new()
            .name("ankh-control".into())
            .spawn(move || {
                while !stopped.load(Ordering::Acquire) {
                    if let Err(error) = manager.run() {
                        // Nothing to answer to: the system runs on without it.
                        tracing::error!("ankh: the control socket stopped: {error}");
                        return;
                    }
                }
            })?;
        Ok(ControlServer {
            socket: socket.clone(),
            stop,
            thread: Some(thread),
            blocked,
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.socket.path
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        if self.stop.write(1).is_ok() {
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
        self.socket.remove();
        // A signal that came after the loop stopped is delivered now, the socket gone.
        if let Some(blocked) = self.blocked.take() {
            blocked.unblock();
        }
    }
}

/// Adds `subscriber` to the loop, woken when `fd` is readable.
fn watch(
    manager: &mut EventManager<Subscriber>,
    subscriber: Subscriber,
    fd: RawFd,
) -> std::io::Result<SubscriberId> {
    let id = manager.add_subscriber(subscriber);
    manager
        .event_ops(id)
        .and_then(|mut ops| ops.add(Events::new_raw(fd, EventSet::IN)))
        .map_err(std::io::Error::other)?;
    Ok(id)
}

/// Checks that `path` is free, or holds a stale socket, which is removed.
fn claim(path: &Path) -> Result<(), ControlSocketError> {
    let inspect_error = |source| ControlSocketError::Inspect {
        path: path.to_owned(),
        source,
    };
    let file_type = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta.file_type(),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(inspect_error(e)),
    };
    if !file_type.is_socket() {
        return Err(ControlSocketError::NotASocket {
            path: path.to_owned(),
            what: describe(file_type),
        });
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(ControlSocketError::InUse {
            path: path.to_owned(),
        }),
        // Nobody listens: left behind by a process that died without cleaning up.
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
            std::fs::remove_file(path).map_err(inspect_error)
        }
        Err(e) => Err(inspect_error(e)),
    }
}

fn describe(file_type: FileType) -> &'static str {
    if file_type.is_file() {
        "a regular file"
    } else if file_type.is_dir() {
        "a directory"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else {
        "a special file"
    }
}

/// The listener and every client.
struct Clients {
    hub: Arc<ControlHub>,
    listener: UnixListener,
    connections: HashMap<RawFd, Connection>,
    /// Ticks to look for idle clients.
    idle_timer: TimerFd,
    idle_limit: Duration,
}

impl Clients {
    fn accept_all(&mut self, ops: &mut EventOps) {
        loop {
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Interrupted | ErrorKind::ConnectionAborted
                    ) =>
                {
                    continue
                }
                // Out of descriptors or memory: the next wake-up tries again.
                Err(_) => return,
            };
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            if self.connections.len() >= MAX_CONNECTIONS {
                refuse(stream);
                continue;
            }
            if ops.add(Events::new(&stream, EventSet::IN)).is_ok() {
                self.connections
                    .insert(stream.as_raw_fd(), Connection::new(stream));
            }
        }
    }

    fn serve(&mut self, fd: RawFd, events: EventSet, ops: &mut EventOps) {
        let Some(connection) = self.connections.get_mut(&fd) else {
            return;
        };
        let next = if events.contains(EventSet::ERROR) {
            Next::Close
        } else {
            connection.serve(&self.hub)
        };
        match next {
            Next::Wait(interest) => {
                if ops
                    .modify(Events::new(connection.stream(), interest))
                    .is_ok()
                {
                    return;
                }
            }
            Next::Close => {}
        }
        self.close(fd, ops);
    }

    /// Closes the connection on `fd`, off the loop first (before its number is reused).
    fn close(&mut self, fd: RawFd, ops: &mut EventOps) {
        if let Some(connection) = self.connections.remove(&fd) {
            let _ = ops.remove(Events::empty(connection.stream()));
        }
    }

    /// Tells clients idle past the limit why they are closed, and closes them.
    fn close_idle(&mut self, ops: &mut EventOps) {
        let _ = self.idle_timer.wait();
        let now = Instant::now();
        let idle: Vec<RawFd> = self
            .connections
            .iter()
            .filter(|(_, c)| now.duration_since(c.last_active()) > self.idle_limit)
            .map(|(&fd, _)| fd)
            .collect();
        for fd in idle {
            if let Some(connection) = self.connections.get(&fd) {
                let reply = Reply::Refused(format!(
                    "idle for more than {} s; closing the connection",
                    self.idle_limit.as_secs_f64()
                ));
                let _ = connection.stream().write_all(reply.to_line().as_bytes());
            }
            self.close(fd, ops);
        }
    }
}

/// Tells a client past [`MAX_CONNECTIONS`] why it is closed.
fn refuse(mut stream: UnixStream) {
    let reply = Reply::Refused(format!(
        "the control socket serves at most {MAX_CONNECTIONS} clients at once; \
         try again when one has closed"
    ));
    let _ = stream.write_all(reply.to_line().as_bytes());
}

impl MutEventSubscriber for Clients {
    fn process(&mut self, events: Events, ops: &mut EventOps) {
        if events.fd() == self.listener.as_raw_fd() {
            self.accept_all(ops);
        } else if events.fd() == self.idle_timer.as_raw_fd() {
            self.close_idle(ops);
        } else {
            self.serve(events.fd(), events.event_set(), ops);
        }
    }

    /// The listener is registered by [`ControlServer::start`], which reports errors.
    fn init(&mut self, _ops: &mut EventOps) {}
}

/// Ends the loop when [`ControlServer`] is dropped.
struct Stop {
    event: EventFd,
    stopped: Arc<AtomicBool>,
}

impl MutEventSubscriber for Stop {
    fn process(&mut self, _events: Events, _ops: &mut EventOps) {
        let _ = self.event.read();
        self.stopped.store(true, Ordering::Release);
    }

    fn init(&mut self, _ops: &mut EventOps) {}
}

/// Removes the socket and dies of an exit signal.
struct Die {
    signals: ExitSignalFd,
    socket: SocketFile,
}

impl MutEventSubscriber for Die {
    fn process(&mut self, _events: Events, _ops: &mut EventOps) {
        if let Ok(Some(signal)) = self.signals.read() {
            self.socket.remove();
            signals::die_of(signal);
        }
    }

    fn init(&mut self, _ops: &mut EventOps) {}
}

#[cfg(test)]
mod tests;
