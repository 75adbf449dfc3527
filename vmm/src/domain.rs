//! A domain: one guest VM with one vCPU, its RAM, its console and its watchdog.
//!
//! Lifecycle ([`DomainState`]):
//! - `Ready`: created and loaded, or stopped at an exit that resumes (a hypercall the
//!   VMM served). [`Domain::run`] and [`Domain::run_until`] move it forward.
//! - `Stopped(exit)`: terminal. The guest exited, halted or faulted; it never runs
//!   again (a later issue adds rollback and restart, which build a new state).
//!
//! The VMM never trusts the guest: every VM exit is turned into either a served
//! hypercall or a [`DomainExit`]; only failures of the host itself (an ioctl that should
//! not fail) are [`DomainError`]s.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kvm_bindings::{
    kvm_userspace_memory_region, KVM_EXIT_DIRTY_RING_FULL, KVM_INTERNAL_ERROR_EMULATION,
    KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES, KVM_MEM_LOG_DIRTY_PAGES,
};
use kvm_ioctls::{Cap, SyncReg, VcpuExit, VcpuFd, VmFd};
use virtio_seep::abi::hypercall::Hypercall;

use crate::checkpoint::CheckpointStore;
use crate::console::{Console, ConsoleSink};
use crate::devices::blk::{BlkDevice, BlkSnapshot, BlkStats, DiskFile};
use crate::devices::DeviceFault;
use crate::dirty_log::DirtyLog;
use crate::fault::{DomainExit, DomainFault};
use crate::hypercall::{HypercallContext, HypercallOutcome};
use crate::image::{GuestImage, ImageError};
use crate::ipc::IpcFault;
use crate::kvm_host::KvmHost;
use crate::memory::{DomainMemory, MemoryError};
use crate::watchdog::{VcpuWatch, Watchdog};
use crate::x86_boot::{self, DomainIdentity, GuestMode};

/// How to build a domain.
#[derive(Clone, Debug)]
pub struct DomainConfig {
    /// The domain's name: console prefix, boot info, reports.
    pub name: String,
    /// Bytes of guest RAM.
    pub memory_size: u64,
    /// Longest the guest may run without an exit before it is stopped as hung.
    pub watchdog_timeout: Duration,
    /// The privilege level the guest's code runs at.
    pub mode: GuestMode,
    /// Its id and peers in its system (default: not in a system).
    pub identity: DomainIdentity,
    /// Whether KVM logs the pages the guest writes ([`Domain::take_dirty_pages`]).
    pub dirty_log: bool,
    /// The disk the domain owns, if any: it gets a virtio-blk device over this image,
    /// mapped in its device window (`virtio_seep::abi::blk`).
    pub disk: Option<Arc<DiskFile>>,
}

impl DomainConfig {
    /// A domain called `name` with the default memory size and watchdog timeout.
    pub fn named(name: &str) -> DomainConfig {
        DomainConfig {
            name: name.to_owned(),
            memory_size: DEFAULT_MEMORY_SIZE,
            watchdog_timeout: DEFAULT_WATCHDOG_TIMEOUT,
            mode: GuestMode::User,
            identity: DomainIdentity::default(),
            dirty_log: false,
            disk: None,
        }
    }

    /// The same config with `mode`.
    pub fn in_mode(self, mode: GuestMode) -> DomainConfig {
        DomainConfig { mode, ..self }
    }
}

/// Default guest RAM of a domain.
pub const DEFAULT_MEMORY_SIZE: u64 = 4 << 20;
/// Default watchdog timeout.
pub const DEFAULT_WATCHDOG_TIMEOUT: Duration = Duration::from_secs(1);

/// A failure of the host while building or running a domain (never caused by what the
/// guest does: that is a [`DomainFault`]).
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The domain's memory could not be set up.
    #[error(transparent)]
    Memory(#[from] MemoryError),
    /// The image cannot be used.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// A KVM call failed while building the domain.
    #[error("{what} failed while creating domain {domain}")]
    Create {
        /// The domain.
        domain: String,
        /// The KVM call.
        what: &'static str,
        /// The KVM error.
        #[source]
        source: kvm_ioctls::Error,
    },
    /// Writing the boot structures into guest memory failed.
    #[error("writing boot structures of domain {domain}")]
    BootStructures {
        /// The domain.
        domain: String,
        /// The memory error.
        #[source]
        source: vm_memory::GuestMemoryError,
    },
    /// A fault could not be injected into the domain.
    #[error("cannot inject a fault into domain {domain}: {what}")]
    Inject {
        /// The domain.
        domain: String,
        /// Why.
        what: &'static str,
    },
    /// A KVM call failed while running the domain.
    #[error("{what} failed while running domain {domain}")]
    Run {
        /// The domain.
        domain: String,
        /// The KVM call.
        what: &'static str,
        /// The KVM error.
        #[source]
        source: kvm_ioctls::Error,
    },
    /// Checkpoints were asked of a domain created without `dirty_log`, or a rollback
    /// before any checkpoint.
    #[error("domain has no checkpoint (create it with dirty_log and take one first)")]
    NoCheckpoints,
    /// The domain was asked to run after it stopped.
    #[error("domain {domain} already stopped ({exit})")]
    AlreadyStopped {
        /// The domain.
        domain: String,
        /// How it stopped.
        exit: DomainExit,
    },
}

/// Where a domain is in its life (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DomainState {
    /// Can run.
    Ready,
    /// Will never run again.
    Stopped(DomainExit),
}

/// What one KVM_RUN ended with, copied out of the vCPU's shared run area (`Device`: an
/// access to the domain's device, already served or refused).
enum Exit {
    PortWrite { port: u16, size: usize, value: u32 },
    PortRead { port: u16, size: usize },
    Mmio { gpa: u64, len: usize, write: bool },
    Device(Result<(), DeviceFault>),
    Hlt,
    Shutdown,
    InternalError,
    DirtyRingFull,
    Other(String),
}

/// What a step of the domain produced.
enum Step {
    Continue(Option<Hypercall>),
    Stop(DomainExit),
    Event(RunEvent),
}

/// Why [`Domain::resume`] returned.
#[derive(Debug, PartialEq, Eq)]
pub enum RunEvent {
    /// The domain stopped for good.
    Stopped(DomainExit),
    /// The domain made a hypercall the caller asked to pause on.
    Paused(Hypercall),
    /// The domain registers its queue pair (`IpcSetup`, argument: guest address).
    IpcSetup(u64),
    /// The domain's IPC notify (`Ipc`, argument: the hypercall value).
    Ipc(u32),
}

/// A per-request limit on guest run time.
#[derive(Clone, Copy, Debug)]
struct RunBudget {
    budget: Duration,
    used: Duration,
}

/// One guest VM.
pub struct Domain {
    // Field order is drop order: the vCPU and the VM go before the RAM they map.
    vcpu: VcpuFd,
    vm: VmFd,
    memory: DomainMemory,
    name: String,
    console: Console,
    watch: Arc<VcpuWatch>,
    state: DomainState,
    /// Present when the domain was created with `dirty_log`.
    checkpoints: Option<CheckpointStore>,
    /// KVM's log of the pages the guest writes (with `dirty_log`); behind a lock
    /// because benchmarks read it through `&Domain`.
    dirty_log: Option<Mutex<DirtyLog>>,
    /// The pages written since the last checkpoint, filled at each look (kept to
    /// spare an allocation per request). All zero between looks: the capture or
    /// restore that follows a look takes its pages out.
    written: Vec<u64>,
    /// KVM copies the general registers into the run page at every exit.
    sync_regs: bool,
    /// Guest run time left for the message in hand, when it has a budget.
    budget: Option<RunBudget>,
    /// Present when the domain owns a disk.
    device: Option<BlkDevice>,
    /// The device's state at the last checkpoint.
    device_checkpoint: Option<BlkSnapshot>,
}

impl Domain {
    /// Builds a domain: VM, RAM, boot structures, the image, and a vCPU at its entry.
    pub fn create(
        host: &KvmHost,
        config: &DomainConfig,
        image: &GuestImage,
        console: Box<dyn ConsoleSink>,
    ) -> Result<Domain, DomainError> {
        let name = config.name.clone();
        let create_err = |what| {
            let domain = name.clone();
            move |source| DomainError::Create {
                domain,
                what,
                source,
            }
        };
        let memory = DomainMemory::new(config.memory_size)?;
        let entry = image.load(&memory)?;
        let stubs = image.exception_stubs();
        let identity = &config.identity;
        let boot_error = |source| DomainError::BootStructures {
            domain: name.clone(),
            source,
        };
        x86_boot::write_boot_structures(&memory, &name, identity, image.end(), stubs)
            .map_err(boot_error)?;
        if config.disk.is_some() {
            x86_boot::map_device_window(&memory).map_err(boot_error)?;
        }

        let vm = host
            .kvm()
            .create_vm()
            .map_err(create_err("KVM_CREATE_VM"))?;
        let mut dirty_log = config.dirty_log.then(|| DirtyLog::new(&vm));
        let region = kvm_userspace_memory_region {
            slot: 0,
            flags: if config.dirty_log {
                KVM_MEM_LOG_DIRTY_PAGES
            } else {
                0
            },
            guest_phys_addr: 0,
            memory_size: memory.size(),
            userspace_addr: memory.host_base(),
        };
        // SAFETY: the region describes `memory`'s single mapping, which the domain owns
        // and keeps mapped for as long as the VM exists: both become fields of `Domain`,
        // which drops the VM before the memory (see the field order there).
        unsafe { vm.set_user_memory_region(region) }
            .map_err(create_err("KVM_SET_USER_MEMORY_REGION"))?;

        let mut vcpu = vm.create_vcpu(0).map_err(create_err("KVM_CREATE_VCPU"))?;
        if let Some(log) = dirty_log.as_mut() {
            log.attach_vcpu(&vcpu)
                .map_err(create_err("mmap of the dirty ring"))?;
        }
        // Hypercall arguments and checkpoints need the registers: have KVM copy them
        // into the shared run page at every exit instead of asking with an ioctl
        // (about 2 us each on these hosts).
        let sync_regs = host.kvm().check_extension(Cap::SyncRegs);
        if sync_regs {
            vcpu.set_sync_valid_reg(SyncReg::Register);
        }
        vcpu.set_cpuid2(host.cpuid())
            .map_err(create_err("KVM_SET_CPUID2"))?;
        let sregs = vcpu.get_sregs().map_err(create_err("KVM_GET_SREGS"))?;
        vcpu.set_sregs(&x86_boot::long_mode_sregs(sregs, config.mode, stubs != 0))
            .map_err(create_err("KVM_SET_SREGS"))?;
        let entry_regs = x86_boot::entry_regs(entry);
        vcpu.set_regs(&entry_regs)
            .map_err(create_err("KVM_SET_REGS"))?;
        if sync_regs {
            vcpu.sync_regs_mut().regs = entry_regs;
        }

        Ok(Domain {
            console: Console::new(&name, console),
            watch: Watchdog::global().watch(config.watchdog_timeout),
            name,
            memory,
            vm,
            vcpu,
            state: DomainState::Ready,
            checkpoints: config
                .dirty_log
                .then(|| CheckpointStore::new(config.memory_size)),
            dirty_log: dirty_log.map(Mutex::new),
            written: Vec::new(),
            sync_regs,
            budget: None,
            device: config.disk.clone().map(BlkDevice::new),
            device_checkpoint: None,
        })
    }

    /// The domain's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The domain's RAM.
    pub fn memory(&self) -> &DomainMemory {
        &self.memory
    }

    /// Where the domain is in its life.
    pub fn state(&self) -> &DomainState {
        &self.state
    }

    /// What the domain's block device did so far (`None`: the domain has no disk).
    pub fn blk_stats(&self) -> Option<BlkStats> {
        self.device.as_ref().map(BlkDevice::stats)
    }

    /// Runs a domain that is not part of a system until it stops. IPC needs a system:
    /// a domain that tries it stops with an IPC fault.
    pub fn run(&mut self) -> Result<DomainExit, DomainError> {
        match self.run_until(|_| false)? {
            Some(exit) => Ok(exit),
            None => unreachable!("run_until only returns None when asked to pause"),
        }
    }

    /// Like [`run`](Self::run), but returns `None` (the domain stays `Ready`) as soon
    /// as it has made a hypercall for which `pause` returns true.
    pub fn run_until(
        &mut self,
        pause: impl FnMut(Hypercall) -> bool,
    ) -> Result<Option<DomainExit>, DomainError> {
        Ok(match self.resume(pause)? {
            RunEvent::Stopped(exit) => Some(exit),
            RunEvent::Paused(_) => None,
            RunEvent::IpcSetup(_) | RunEvent::Ipc(_) => {
                Some(self.fail(IpcFault::NotSetUp("outside a system (use `ankh up`)").into()))
            }
        })
    }

    /// Runs the domain until it stops, makes an IPC hypercall, or makes a hypercall
    /// for which `pause` returns true.
    pub fn resume(
        &mut self,
        mut pause: impl FnMut(Hypercall) -> bool,
    ) -> Result<RunEvent, DomainError> {
        if let DomainState::Stopped(exit) = &self.state {
            return Err(DomainError::AlreadyStopped {
                domain: self.name.clone(),
                exit: exit.clone(),
            });
        }
        self.watch.bind_current_thread();
        let result = loop {
            match self.step() {
                Ok(Step::Continue(Some(call))) if pause(call) => break Ok(RunEvent::Paused(call)),
                Ok(Step::Continue(_)) => {}
                Ok(Step::Event(event)) => break Ok(event),
                Ok(Step::Stop(exit)) => break Ok(RunEvent::Stopped(self.stop(exit))),
                Err(e) => break Err(e),
            }
        };
        self.watch.unbind_thread();
        result
    }

    /// Number of pages the guest wrote since the last call (KVM's dirty log; the
    /// domain must have been created with `dirty_log`). Pages the VMM writes into the
    /// guest are not counted: KVM logs only the guest's own writes.
    pub fn take_dirty_pages(&self) -> Result<usize, DomainError> {
        let size = usize::try_from(self.memory.size()).expect("RAM fits usize");
        let mut log = self.dirty_log()?;
        log.take_all(&self.vm, size)
            .map_err(|source| self.run_error("KVM_GET_DIRTY_LOG", source))
    }

    /// The dirty log (`NoCheckpoints` for a domain created without `dirty_log`).
    fn dirty_log(&self) -> Result<std::sync::MutexGuard<'_, DirtyLog>, DomainError> {
        let log = self.dirty_log.as_ref().ok_or(DomainError::NoCheckpoints)?;
        Ok(log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Takes a checkpoint: the pages written since the previous one (by the guest or by
    /// the VMM) go into the checkpoint store, with the vCPU state. Returns the pages
    /// copied. The domain must have been created with `dirty_log`, and must not have
    /// stopped.
    pub fn checkpoint(&mut self) -> Result<usize, DomainError> {
        self.look_for_written()?;
        let regs = self.regs()?;
        // Segment, control and x87 state do not change while a guest serves requests
        // (it runs at CPL3, or at CPL0 without touching them, and uses no floats), so
        // they are read at the first checkpoint only: each read is an ioctl of about
        // 2 us, a sizeable part of a checkpoint. Debug builds check the assumption.
        let saved = self.checkpoints.as_ref().and_then(CheckpointStore::vcpu);
        let first = match saved {
            Some(saved) => {
                debug_assert_eq!(self.vcpu.get_sregs().ok(), Some(saved.sregs));
                debug_assert_eq!(self.vcpu.get_fpu().ok(), Some(saved.fpu));
                None
            }
            None => Some((
                self.vcpu
                    .get_sregs()
                    .map_err(|source| self.run_error("KVM_GET_SREGS", source))?,
                self.vcpu
                    .get_fpu()
                    .map_err(|source| self.run_error("KVM_GET_FPU", source))?,
            )),
        };
        let store = self
            .checkpoints
            .as_mut()
            .ok_or(DomainError::NoCheckpoints)?;
        store.keep_vcpu(regs, first);
        self.device_checkpoint = self.device.as_ref().map(BlkDevice::snapshot);
        Ok(store.capture(&self.memory, &mut self.written))
    }

    /// Rolls the domain back to its last checkpoint: memory byte-identical to it, vCPU
    /// as it was, the domain `Ready` again (whatever stopped it). Returns the pages
    /// restored.
    pub fn rollback(&mut self) -> Result<usize, DomainError> {
        self.look_for_written()?;
        let store = self
            .checkpoints
            .as_ref()
            .ok_or(DomainError::NoCheckpoints)?;
        let vcpu = store.vcpu().ok_or(DomainError::NoCheckpoints)?.clone();
        let restored = store.restore(&self.memory, &mut self.written);
        // The restore itself went through the VMM's bitmap; those pages now equal the
        // checkpoint, so they are not "written since".
        self.memory.take_vmm_written();
        let error = |what| {
            let domain = self.name.clone();
            move |source| DomainError::Run {
                domain,
                what,
                source,
            }
        };
        self.vcpu
            .set_sregs(&vcpu.sregs)
            .map_err(error("KVM_SET_SREGS"))?;
        self.vcpu
            .set_regs(&vcpu.regs)
            .map_err(error("KVM_SET_REGS"))?;
        self.vcpu.set_fpu(&vcpu.fpu).map_err(error("KVM_SET_FPU"))?;
        self.note_regs(&vcpu.regs);
        if let (Some(device), Some(snapshot)) = (&mut self.device, &self.device_checkpoint) {
            device.restore(snapshot);
        }
        self.state = DomainState::Ready;
        Ok(restored)
    }

    /// A hash of the domain's whole RAM (tests compare memory before and after a
    /// rollback with it).
    pub fn memory_hash(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut bytes = vec![0u8; usize::try_from(self.memory.size()).expect("RAM fits")];
        // Reading all of RAM cannot fail: the range is exactly the region.
        let _ = vm_memory::Bytes::read_slice(
            self.memory.guest(),
            &mut bytes,
            vm_memory::GuestAddress(0),
        );
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut hasher);
        hasher.finish()
    }

    /// Sets `written` to the pages written since the last checkpoint or rollback:
    /// KVM's log of the guest's writes and the VMM's own.
    fn look_for_written(&mut self) -> Result<(), DomainError> {
        let (Some(_), Some(log)) = (&self.checkpoints, &self.dirty_log) else {
            return Err(DomainError::NoCheckpoints);
        };
        let size = usize::try_from(self.memory.size()).expect("RAM fits usize");
        // Zero already (see `written`), unless a look failed half way: then it keeps
        // a few more pages, which costs copies, never correctness.
        self.written.resize((size / 4096).div_ceil(64), 0);
        let looked = log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .look(&self.vm, size, &mut self.written);
        looked.map_err(|source| self.run_error("KVM_GET_DIRTY_LOG", source))?;
        self.memory.take_vmm_written_into(&mut self.written);
        Ok(())
    }

    /// Fault injection: makes the guest spin where it stands (the VMM writes a
    /// jump-to-itself at its instruction pointer), so that the next run hangs without
    /// exits until the watchdog stops it. A rollback restores the code page (the VMM's
    /// write is in vm-memory's dirty bitmap); a restart reloads it.
    pub fn inject_hang(&mut self) -> Result<(), DomainError> {
        const JUMP_TO_SELF: [u8; 2] = [0xeb, 0xfe];
        let rip = self.regs()?.rip;
        vm_memory::Bytes::write_slice(
            self.memory.guest(),
            &JUMP_TO_SELF,
            vm_memory::GuestAddress(rip),
        )
        .map_err(|_| DomainError::Inject {
            domain: self.name.clone(),
            what: "its instruction pointer is outside its RAM",
        })
    }

    /// Fault injection: gives the guest a non-canonical stack pointer, so that its next
    /// stack access faults by itself (detected by the CPU, not by the VMM).
    pub fn corrupt_stack(&mut self) -> Result<(), DomainError> {
        let mut regs = self.regs()?;
        regs.rsp = 0xdead_0000_0000_0000;
        self.vcpu
            .set_regs(&regs)
            .map_err(|source| self.run_error("KVM_SET_REGS", source))?;
        self.note_regs(&regs);
        Ok(())
    }

    /// Keeps the run page's copy of the registers (see `sync_regs`) equal to what was
    /// just set with an ioctl, for a checkpoint taken before the next exit. KVM does
    /// not load it on entry: only its dirty flag would make it.
    fn note_regs(&mut self, regs: &kvm_bindings::kvm_regs) {
        if self.sync_regs {
            self.vcpu.sync_regs_mut().regs = *regs;
        }
    }

    /// Stops the domain with `fault`, found by the VMM outside the vCPU (e.g. a
    /// malformed message). Returns the exit.
    pub fn fail(&mut self, fault: DomainFault) -> DomainExit {
        self.stop(DomainExit::Faulted(fault))
    }

    fn stop(&mut self, exit: DomainExit) -> DomainExit {
        self.console.flush();
        self.state = DomainState::Stopped(exit.clone());
        exit
    }

    /// Gives the message in hand `budget` of guest run time (`None`: no limit). A
    /// domain that uses it up stops with [`DomainFault::RequestOverBudget`] at its next
    /// exit: the per-request watchdog, for a server that keeps exiting but never
    /// answers (one that stops exiting is caught by the vCPU watchdog).
    pub fn set_request_budget(&mut self, budget: Option<Duration>) {
        self.budget = budget.map(|budget| RunBudget {
            budget,
            used: Duration::ZERO,
        });
    }

    fn step(&mut self) -> Result<Step, DomainError> {
        let started = self.budget.is_some().then(std::time::Instant::now);
        let step = self.step_once()?;
        if let (Some(started), Some(budget)) = (started, self.budget.as_mut()) {
            budget.used += started.elapsed();
            if budget.used > budget.budget && !matches!(step, Step::Stop(_)) {
                let budget = budget.budget;
                return Ok(Step::Stop(DomainExit::Faulted(
                    DomainFault::RequestOverBudget { budget },
                )));
            }
        }
        Ok(step)
    }

    fn step_once(&mut self) -> Result<Step, DomainError> {
        self.watch.enter();
        let (device, memory, watch) = (self.device.as_mut(), &self.memory, &self.watch);
        // The guest stops running when KVM_RUN returns: a device access is served after
        // the watch is left, so the device's I/O never counts as time in the guest.
        let (exit, watchdog_fired) = match self.vcpu.run() {
            Ok(exit) => {
                let fired = watch.leave();
                (Ok(copy_exit(exit, device, memory)), fired)
            }
            Err(error) => (Err(error), watch.leave()),
        };
        let exit = match exit {
            Ok(exit) => exit,
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                return Ok(match watchdog_fired {
                    true => Step::Stop(DomainExit::Faulted(DomainFault::WatchdogTimeout {
                        timeout: self.watch.timeout(),
                    })),
                    // A stale kick from an earlier run: just resume.
                    false => Step::Continue(None),
                });
            }
            Err(source) => return Err(self.run_error("KVM_RUN", source)),
        };
        let fault = |fault| Ok(Step::Stop(DomainExit::Faulted(fault)));
        match exit {
            Exit::PortWrite {
                port,
                size: 4,
                value,
            } => match Hypercall::from_port(port) {
                Some(call) => self.hypercall(call, value),
                None => fault(unknown_port(port, "write", 4)),
            },
            Exit::PortWrite { port, size, .. } => fault(unknown_port(port, "write", size)),
            Exit::PortRead { port, size } => fault(unknown_port(port, "read", size)),
            Exit::Mmio { gpa, len, write } => {
                fault(DomainFault::UnownedAddress { gpa, len, write })
            }
            Exit::Device(Ok(())) => Ok(Step::Continue(None)),
            Exit::Device(Err(device_fault)) => fault(device_fault.into()),
            Exit::Hlt => Ok(Step::Stop(DomainExit::Halted)),
            Exit::Shutdown => {
                let rip = self.regs()?.rip;
                fault(DomainFault::TripleFault { rip })
            }
            Exit::InternalError => fault(self.internal_error()?),
            Exit::DirtyRingFull => {
                self.dirty_log()?
                    .ring_full(&self.vm)
                    .map_err(|source| self.run_error("KVM_RESET_DIRTY_RINGS", source))?;
                Ok(Step::Continue(None))
            }
            Exit::Other(reason) => fault(DomainFault::UnexpectedExit { reason }),
        }
    }

    fn hypercall(&mut self, call: Hypercall, value: u32) -> Result<Step, DomainError> {
        // The calls on the hot path take no register arguments: no read for them.
        let regs = match call {
            Hypercall::Nop | Hypercall::Exit | Hypercall::Ipc => Default::default(),
            _ => self.regs()?,
        };
        let mut ctx = HypercallContext {
            memory: &self.memory,
            console: &mut self.console,
        };
        Ok(match ctx.serve(call, value, || regs) {
            HypercallOutcome::Resume => Step::Continue(Some(call)),
            HypercallOutcome::Stop(exit) => Step::Stop(exit),
            HypercallOutcome::IpcSetup { setup } => Step::Event(RunEvent::IpcSetup(setup)),
            HypercallOutcome::Ipc { value } => Step::Event(RunEvent::Ipc(value)),
        })
    }

    /// Reads the details of a KVM_EXIT_INTERNAL_ERROR.
    fn internal_error(&mut self) -> Result<DomainFault, DomainError> {
        let rip = self.regs()?.rip;
        let run = self.vcpu.get_kvm_run();
        // SAFETY: the last exit was KVM_EXIT_INTERNAL_ERROR, for which KVM fills the
        // `internal` member of the union; `emulation_failure` overlays it and is only
        // read when `suberror` says it is an emulation failure. Both are plain data.
        let (suberror, kvm_bytes) = unsafe {
            let failure = run.__bindgen_anon_1.emulation_failure;
            let has_bytes = failure.suberror == KVM_INTERNAL_ERROR_EMULATION
                && failure.flags & u64::from(KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)
                    != 0;
            let insn = failure.__bindgen_anon_1.__bindgen_anon_1;
            let len = usize::from(insn.insn_size).min(insn.insn_bytes.len());
            (
                run.__bindgen_anon_1.internal.suberror,
                has_bytes.then(|| insn.insn_bytes[..len].to_vec()),
            )
        };
        if suberror != KVM_INTERNAL_ERROR_EMULATION {
            return Ok(DomainFault::UnexpectedExit {
                reason: format!("KVM internal error, suberror {suberror}"),
            });
        }
        let ctx = HypercallContext {
            memory: &self.memory,
            console: &mut self.console,
        };
        let bytes = kvm_bytes
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| ctx.instruction_at(rip));
        let simd = ankh_images::simd::describe_simd(&bytes, rip);
        Ok(DomainFault::EmulationFailure { rip, bytes, simd })
    }

    /// The general registers: the run page's copy when KVM keeps it (`sync_regs`),
    /// else an ioctl.
    fn regs(&self) -> Result<kvm_bindings::kvm_regs, DomainError> {
        if self.sync_regs {
            let regs = self.vcpu.sync_regs().regs;
            debug_assert_eq!(self.vcpu.get_regs().ok(), Some(regs));
            return Ok(regs);
        }
        self.vcpu
            .get_regs()
            .map_err(|source| self.run_error("KVM_GET_REGS", source))
    }

    fn run_error(&self, what: &'static str, source: kvm_ioctls::Error) -> DomainError {
        DomainError::Run {
            domain: self.name.clone(),
            what,
            source,
        }
    }
}

fn unknown_port(port: u16, direction: &'static str, size: usize) -> DomainFault {
    DomainFault::UnknownHypercall {
        port,
        direction,
        size,
    }
}

/// Copies what the exit says out of the run area; an access to the domain's device is
/// served right here, while KVM's `data` buffer is at hand (a read's value must be in
/// it before the next KVM_RUN).
fn copy_exit(exit: VcpuExit<'_>, device: Option<&mut BlkDevice>, memory: &DomainMemory) -> Exit {
    match exit {
        VcpuExit::IoOut(port, data) => {
            let mut value = [0u8; 4];
            let len = data.len().min(4);
            value[..len].copy_from_slice(&data[..len]);
            Exit::PortWrite {
                port,
                size: data.len(),
                value: u32::from_le_bytes(value),
            }
        }
        VcpuExit::IoIn(port, data) => Exit::PortRead {
            port,
            size: data.len(),
        },
        VcpuExit::MmioRead(gpa, data) => match device {
            Some(device) if BlkDevice::owns(gpa) => Exit::Device(device.mmio_read(gpa, data)),
            _ => Exit::Mmio {
                gpa,
                len: data.len(),
                write: false,
            },
        },
        VcpuExit::MmioWrite(gpa, data) => match device {
            Some(device) if BlkDevice::owns(gpa) => {
                Exit::Device(device.mmio_write(memory, gpa, data))
            }
            _ => Exit::Mmio {
                gpa,
                len: data.len(),
                write: true,
            },
        },
        VcpuExit::Hlt => Exit::Hlt,
        VcpuExit::Shutdown => Exit::Shutdown,
        VcpuExit::InternalError => Exit::InternalError,
        VcpuExit::Unsupported(KVM_EXIT_DIRTY_RING_FULL) => Exit::DirtyRingFull,
        other => Exit::Other(format!("{other:?}")),
    }
}
