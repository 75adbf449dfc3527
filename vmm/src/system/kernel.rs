//! Kernel calls: what privileged domains ask of the VMM itself (domain 0).
//!
//! - `SYS_ROOT_FS` (servers): the root file system archive, as bulk data;
//! - `SYS_CREATE_DOMAIN` (the process manager): a new process domain from the ELF in
//!   the bulk data; it runs on the creating thread and may call what its parent may
//!   call;
//! - `SYS_START_DOMAIN` (the process manager): let a created domain run. A created
//!   domain is held until then, so that it never runs before the servers know it
//!   (PM introduces it to VFS and MM between the two calls);
//! - `SYS_KILL_DOMAIN` (the process manager): stop a process domain.
//!
//! The router checks the caller's role before any of this runs; everything else the
//! caller wrote (records, names, the ELF) is checked here.

use std::sync::Arc;

use ankh_proto::sys::{self, CreateDomain, Created, KillDomain, StartDomain};
use ankh_proto::wire;
use virtio_seep::errno::{self, Errno};
use virtio_seep::message::{DomainId, VMM_DOMAIN};
use virtio_seep::opcode;
use zerocopy::IntoBytes;

use super::scheduler::{Slot, Worker};
use super::SystemOptions;
use crate::domain::{Domain, DomainConfig, DEFAULT_MEMORY_SIZE};
use crate::fault::{DomainExit, DomainFault};
use crate::image::GuestImage;
use crate::ipc::router::{Activity, ExitCause, Role};
use crate::ipc::Message;
use crate::kvm_host::KvmHost;
use crate::x86_boot::{DomainIdentity, GuestMode};

/// What the threads need to create domains at run time.
pub(super) struct Spawner<'a> {
    pub(super) host: &'a KvmHost,
    pub(super) options: &'a SystemOptions,
    pub(super) root_fs: Arc<[u8]>,
}

/// How the process manager is told a domain ended.
pub(super) fn exit_cause(exit: &DomainExit) -> ExitCause {
    match exit {
        DomainExit::Exited { code } => ExitCause {
            cause: sys::EXIT_NORMAL,
            code: i32::from_ne_bytes(code.to_ne_bytes()),
        },
        DomainExit::Halted => ExitCause {
            cause: sys::EXIT_NORMAL,
            code: 0,
        },
        DomainExit::Faulted(DomainFault::Killed { .. }) => ExitCause {
            cause: sys::EXIT_KILLED,
            code: 0,
        },
        DomainExit::Faulted(_) => ExitCause {
            cause: sys::EXIT_FAULT,
            code: 0,
        },
    }
}

fn reply(payload: Vec<u8>, bulk: Vec<u8>) -> Message {
    let mut message = Message {
        payload,
        bulk,
        ..Message::default()
    };
    message.header.payload_len = u32::try_from(message.payload.len()).expect("small");
    message.header.bulk_len = u32::try_from(message.bulk.len()).expect("<= 1 MiB");
    message
}

fn error(status: Errno) -> Message {
    let mut message = reply(Vec::new(), Vec::new());
    message.header.status = status;
    message
}

impl Worker<'_> {
    /// Serves kernel call `message` from `caller`; the reply (status, payload, bulk).
    pub(super) fn kernel_call(&mut self, caller: DomainId, message: &Message) -> Message {
        let result = match message.header.opcode {
            opcode::SYS_ROOT_FS => self.root_fs(),
            opcode::SYS_CREATE_DOMAIN => self.create_domain(message),
            opcode::SYS_KILL_DOMAIN => self.kill_domain(caller, message),
            opcode::SYS_START_DOMAIN => self.start_domain(message),
            _ => Err(errno::ENOSYS),
        };
        result.unwrap_or_else(error)
    }

    fn root_fs(&self) -> Result<Message, Errno> {
        let archive = &self.spawner.root_fs;
        if archive.len() > virtio_seep::message::BULK_MAX as usize {
            return Err(errno::E2BIG);
        }
        Ok(reply(Vec::new(), archive.to_vec()))
    }

    fn create_domain(&mut self, message: &Message) -> Result<Message, Errno> {
        let request: CreateDomain = wire::record(&message.payload)?;
        let split = message
            .bulk
            .iter()
            .position(|&b| b == 0)
            .ok_or(errno::EINVAL)?;
        let (name, elf) = (&message.bulk[..split], &message.bulk[split + 1..]);
        let name = process_name(name);
        let image = GuestImage::parse(&name, elf.to_vec()).map_err(|_| errno::ENOEXEC)?;
        let memory_size = match request.memory_mib {
            0 => DEFAULT_MEMORY_SIZE,
            mib @ 2..=1024 => u64::from(mib) << 20,
            _ => return Err(errno::EINVAL),
        };
        let (id, peers) = {
            let mut state = self.lock();
            let parent = request.parent;
            let parent_is_process = parent != VMM_DOMAIN
                && parent <= state.router.domain_count()
                && state.router.role(parent) == Role::Process;
            let callees = match parent_is_process {
                true => state.router.callees(parent),
                false => state.process_callees.clone(),
            };
            let id = state.router.add_domain(Role::Process, &callees);
            state.names.insert(id, name.clone());
            state.thread_of.insert(id, self.index);
            let peers: Vec<(DomainId, String)> = callees
                .iter()
                .map(|c| (*c, state.names.get(c).cloned().unwrap_or_default()))
                .collect();
            (id, peers)
        };
        let options = self.spawner.options;
        let config = DomainConfig {
            name: name.clone(),
            memory_size,
            watchdog_timeout: options.watchdog_timeout,
            mode: GuestMode::User,
            identity: DomainIdentity { id, peers },
            dirty_log: options.dirty_log,
            disk: None,
            debug: None,
        };
        let console = (options.console)(&name);
        match Domain::create(self.spawner.host, &config, &image, console) {
            Ok(domain) => {
                self.slots.insert(id, Slot::new(domain, None));
                self.held.insert(id);
                let created = Created { id, reserved: 0 };
                Ok(reply(created.as_bytes().to_vec(), Vec::new()))
            }
            Err(_) => {
                let cause = ExitCause {
                    cause: sys::EXIT_FAULT,
                    code: 0,
                };
                let mut state = self.lock();
                let woken = state.router.stopped(id, cause);
                if state.schedule(&woken, self.index) {
                    self.notify_others();
                }
                Err(errno::ENOMEM)
            }
        }
    }

    fn start_domain(&mut self, message: &Message) -> Result<Message, Errno> {
        let StartDomain { id, .. } = wire::record(&message.payload)?;
        // Only a held domain of this thread (created here, by this PM) starts, once.
        if !self.held.remove(&id) {
            return Err(errno::ESRCH);
        }
        self.lock().ready[self.index].push_back(id);
        Ok(reply(Vec::new(), Vec::new()))
    }

    fn kill_domain(&mut self, caller: DomainId, message: &Message) -> Result<Message, Errno> {
        let request: KillDomain = wire::record(&message.payload)?;
        let target = request.id;
        {
            let mut state = self.lock();
            if target == VMM_DOMAIN
                || target > state.router.domain_count()
                || *state.router.activity(target) == Activity::Stopped
            {
                return Err(errno::ESRCH);
            }
            if state.router.role(target) != Role::Process {
                return Err(errno::EPERM);
            }
            if !self.slots.contains_key(&target) {
                // Another thread's domain: stop it in the router now; its thread marks
                // the domain itself when it sees it again.
                state.killed.insert(target, caller);
                let cause = ExitCause {
                    cause: sys::EXIT_KILLED,
                    code: 0,
                };
                let woken = state.router.stopped(target, cause);
                if state.schedule(&woken, self.index) {
                    self.notify_others();
                }
                return Ok(reply(Vec::new(), Vec::new()));
            }
        }
        // Ours, so it is not running (we are).
        self.fail(target, DomainFault::Killed { by: caller });
        Ok(reply(Vec::new(), Vec::new()))
    }
}

/// A domain name from a guest-supplied one: 1..=16 bytes of `a-z0-9-`, else "process".
fn process_name(raw: &[u8]) -> String {
    let ok = !raw.is_empty()
        && raw.len() <= 16
        && raw
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    match ok {
        true => String::from_utf8_lossy(raw).into_owned(),
        false => "process".into(),
    }
}
