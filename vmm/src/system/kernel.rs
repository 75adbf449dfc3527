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
//! While the caller's recovery window is open, the site holds the effects of these
//! calls until the caller's state is exposed (see `held`): each call is checked and
//! answered now, exactly as it would be if it were carried out at once.
//!
//! The router checks the caller's role before any of this runs; everything else the
//! caller wrote (records, names, the ELF) is checked here.

use ankh_proto::sys::{CreateDomain, Created, KillDomain, StartDomain};
use ankh_proto::wire;
use virtio_seep::errno::{self, Errno};
use virtio_seep::message::DomainId;
use virtio_seep::opcode;
use zerocopy::IntoBytes;

use super::SystemOptions;
use crate::domain::{Domain, DomainConfig, DomainError, DEFAULT_MEMORY_SIZE};
use crate::image::GuestImage;
use crate::ipc::Message;
use crate::x86_boot::{DomainIdentity, GuestMode};

/// What kernel calls ask of the system that runs the caller. The worker thread that
/// runs the caller implements it (it holds the router, the names and its domains).
pub(super) trait KernelSite {
    /// How the system runs (the root file system, consoles, watchdog, dirty logging).
    fn options(&self) -> &SystemOptions;
    /// Gives a new process domain called `name` an id, allowed to call what `parent`
    /// may call (or what the description's processes may call, when `parent` is not
    /// a process); returns its id and its peers (ids and names).
    fn add_process(&mut self, parent: DomainId, name: &str) -> (DomainId, Vec<(DomainId, String)>);
    /// Boots a domain from `image` with `config`.
    fn boot(&self, config: &DomainConfig, image: &GuestImage) -> Result<Domain, DomainError>;
    /// Keeps domain `id`, created by `caller`, on the caller's thread, held until it
    /// is started.
    fn hold(&mut self, caller: DomainId, id: DomainId, domain: Domain);
    /// Domain `id` was given an id but could not be created: it is gone.
    fn creation_failed(&mut self, id: DomainId);
    /// Lets held domain `id` run at the request of `caller`; false if it is not held
    /// on the caller's thread (or its start was asked for already).
    fn start(&mut self, caller: DomainId, id: DomainId) -> bool;
    /// Stops process domain `target` at the request of `caller`: `ESRCH` if there is
    /// no such running domain, `EPERM` if it is not a process.
    fn kill(&mut self, caller: DomainId, target: DomainId) -> Result<(), Errno>;
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

/// Serves kernel call `message` from `caller`; the reply (status, payload, bulk).
pub(super) fn serve(site: &mut impl KernelSite, caller: DomainId, message: &Message) -> Message {
    let result = match message.header.opcode {
        opcode::SYS_ROOT_FS => root_fs(site),
        opcode::SYS_CREATE_DOMAIN => create_domain(site, caller, message),
        opcode::SYS_KILL_DOMAIN => kill_domain(site, caller, message),
        opcode::SYS_START_DOMAIN => start_domain(site, caller, message),
        _ => Err(errno::ENOSYS),
    };
    result.unwrap_or_else(error)
}

fn root_fs(site: &impl KernelSite) -> Result<Message, Errno> {
    let archive = &site.options().root_fs;
    if archive.len() > virtio_seep::message::BULK_MAX as usize {
        return Err(errno::E2BIG);
    }
    Ok(reply(Vec::new(), archive.to_vec()))
}

fn create_domain(
    site: &mut impl KernelSite,
    caller: DomainId,
    message: &Message,
) -> Result<Message, Errno> {
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
    let (id, peers) = site.add_process(request.parent, &name);
    let options = site.options();
    let config = DomainConfig {
        name,
        memory_size,
        watchdog_timeout: options.watchdog_timeout,
        mode: GuestMode::User,
        identity: DomainIdentity { id, peers },
        dirty_log: options.dirty_log,
        disk: None,
        debug: None,
        substrate: options.substrate,
    };
    match site.boot(&config, &image) {
        Ok(domain) => {
            site.hold(caller, id, domain);
            let created = Created { id, reserved: 0 };
            Ok(reply(created.as_bytes().to_vec(), Vec::new()))
        }
        Err(_) => {
            site.creation_failed(id);
            Err(errno::ENOMEM)
        }
    }
}

fn start_domain(
    site: &mut impl KernelSite,
    caller: DomainId,
    message: &Message,
) -> Result<Message, Errno> {
    let StartDomain { id, .. } = wire::record(&message.payload)?;
    // Only a held domain of this thread (created here, by this PM) starts, once.
    if !site.start(caller, id) {
        return Err(errno::ESRCH);
    }
    Ok(reply(Vec::new(), Vec::new()))
}

fn kill_domain(
    site: &mut impl KernelSite,
    caller: DomainId,
    message: &Message,
) -> Result<Message, Errno> {
    let request: KillDomain = wire::record(&message.payload)?;
    site.kill(caller, request.id)?;
    Ok(reply(Vec::new(), Vec::new()))
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
