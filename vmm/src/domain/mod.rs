//! A domain: one guest VM with one vCPU, its RAM, its console and its watchdog.
//!
//! Lifecycle ([`DomainState`]):
//! - `Ready`: created and loaded, or stopped at an exit that resumes (a hypercall the
//!   VMM served). [`Domain::run`] and [`Domain::run_until`] move it forward.
//! - `Stopped(exit)`: the guest exited, halted or faulted. It runs again only if
//!   [`Domain::rollback`] puts it back at its last checkpoint (`Ready`).
//!
//! The VMM never trusts the guest: every VM exit is turned into either a served
//! hypercall or a [`DomainExit`]; only failures of the host
//! itself (an ioctl that should not fail) are [`DomainError`]s.
//!
//! The files of this module: `config` (how to build one), `error`, `run` (the run loop
//! and its budget), `exit` (decoding a VM exit), `checkpoint` (checkpoints and
//! rollback), `inject` (fault injection) and `debug` (hardware breakpoints and
//! single-step for fault-injection campaigns).

mod checkpoint;
mod config;
pub mod debug;
mod declared;
mod error;
mod exit;
mod inject;
pub mod process;
mod run;
mod vcpu_state;

use std::sync::{Arc, Mutex};

use kvm_bindings::{kvm_userspace_memory_region, KVM_MEM_LOG_DIRTY_PAGES};
use kvm_ioctls::{VcpuFd, VmFd};

pub use config::{DomainConfig, Substrate, DEFAULT_MEMORY_SIZE, DEFAULT_WATCHDOG_TIMEOUT};
pub use error::DomainError;
#[doc(hidden)]
pub use inject::VcpuSnapshot;
pub use run::RunEvent;

use crate::checkpoint::CheckpointStore;
use crate::console::{Console, ConsoleSink};
use crate::devices::blk::{BlkDevice, BlkSnapshot, BlkStats};
use crate::dirty_log::DirtyLog;
use crate::fault::{DomainExit, DomainFault};
use crate::image::GuestImage;
use crate::kvm_host::KvmHost;
use crate::memory::DomainMemory;
use crate::watchdog::{VcpuWatch, Watchdog};
use crate::x86_boot;
use process::ProcessCpu;
use run::RunBudget;
use vcpu_state::VcpuAccess;

/// Exits of every domain of this process so far, whatever their substrate (each VM exit
/// or process-domain report): benchmarks read it around a workload to count the exits
/// per operation.
pub static EXITS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Where a domain is in its life (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DomainState {
    /// Can run.
    Ready,
    /// Stopped; only a rollback makes it `Ready` again.
    Stopped(DomainExit),
}

/// One domain: a guest VM, or a guest process (see [`Substrate`]).
pub struct Domain {
    // Field order is drop order: the vCPU and the VM (or the process) go before the RAM
    // they map.
    cpu: Cpu,
    memory: DomainMemory,
    name: String,
    console: Console,
    watch: Arc<VcpuWatch>,
    state: DomainState,
    /// Present when the domain was created with `dirty_log`.
    checkpoints: Option<CheckpointStore>,
    /// The pages written since the last checkpoint, filled at each look (kept to
    /// spare an allocation per request). All zero between looks: the capture or
    /// restore that follows a look takes its pages out.
    written: Vec<u64>,
    /// The guest wrote its code pages, seen by a checkpoint that then failed: the
    /// next one must still count it (those pages may have left `written`).
    code_written_pending: bool,
    /// The image's main stack (see [`GuestImage::stack`]), for a domain that takes
    /// checkpoints: what lies below the stack pointer at a checkpoint is not kept.
    stack: Option<std::ops::Range<u64>>,
    /// Guest run time left for the message in hand, when it has a budget.
    budget: Option<RunBudget>,
    /// Present when the domain owns a disk.
    device: Option<BlkDevice>,
    /// The device's state at the last checkpoint.
    device_checkpoint: Option<BlkSnapshot>,
    /// Guest debugging for a campaign (see `debug`), if any.
    debug: Option<Arc<debug::GuestDebug>>,
    /// What KVM's guest debugging is set to now.
    debug_mode: debug::DebugMode,
    /// A message was delivered: arm `debug` before the next entry.
    debug_arm_pending: bool,
    /// The profile's step count (of the whole run) at the last `take_profiled_steps`.
    profiled_steps_seen: u64,
}

/// What runs the domain's code.
enum Cpu {
    /// A KVM VM.
    Kvm(Box<KvmCpu>),
    /// A Linux process (see `process`).
    Process(Box<ProcessCpu>),
}

/// The KVM side of a VM domain.
pub(super) struct KvmCpu {
    // Field order is drop order: the vCPU before its VM.
    pub(super) vcpu: VcpuFd,
    pub(super) vm: VmFd,
    /// KVM's log of the pages the guest writes (with `dirty_log`); behind a lock
    /// because benchmarks read it through `&Domain`.
    dirty_log: Option<Mutex<DirtyLog>>,
    /// How the vCPU state is read and written (what KVM copies into the run page).
    access: VcpuAccess,
    /// The region of RAM the guest tracks itself, once it named one.
    declared: Option<declared::DeclaredRegion>,
}

impl Domain {
    /// Builds a domain: on KVM a VM, RAM, boot structures, the image, and a vCPU at
    /// its entry; as a process, RAM, the image, the boot information and the process.
    pub fn create(
        host: &KvmHost,
        config: &DomainConfig,
        image: &GuestImage,
        console: Box<dyn ConsoleSink>,
    ) -> Result<Domain, DomainError> {
        let (cpu, memory, checkpoints) = match config.substrate {
            Substrate::Kvm => Self::create_vm(host, config, image)?,
            Substrate::Process => Self::create_process(config, image)?,
        };
        let name = config.name.clone();
        let mut domain = Domain {
            console: Console::new(&name, console),
            watch: Watchdog::global().watch(config.watchdog_timeout),
            name,
            memory,
            cpu,
            state: DomainState::Ready,
            checkpoints,
            written: Vec::new(),
            code_written_pending: false,
            stack: config.dirty_log.then(|| image.stack()).flatten(),
            budget: None,
            device: config.disk.clone().map(BlkDevice::new),
            device_checkpoint: None,
            debug: config.debug.clone(),
            debug_mode: debug::DebugMode::Off,
            debug_arm_pending: false,
            profiled_steps_seen: config.debug.as_ref().map_or(0, |debug| debug.steps()),
        };
        domain.prepare_debug()?;
        Ok(domain)
    }

    /// The process substrate's part of [`create`](Self::create).
    fn create_process(
        config: &DomainConfig,
        image: &GuestImage,
    ) -> Result<(Cpu, DomainMemory, Option<CheckpointStore>), DomainError> {
        let name = config.name.clone();
        let (memory, ram) = DomainMemory::shared(config.memory_size, &name)?;
        let entry = image.load(&memory)?;
        let boot = x86_boot::BootIdentity {
            name: &name,
            identity: &config.identity,
            free_memory_start: image.end(),
            process_control: virtio_seep::abi::process::CONTROL_ADDR,
        };
        x86_boot::write_boot_info(&memory, &boot, virtio_seep::abi::process::BOOT_INFO_ADDR)
            .map_err(|source| DomainError::BootStructures {
                domain: name.clone(),
                source,
            })?;
        let cpu = ProcessCpu::spawn(&ram, config.memory_size, entry, config.dirty_log).map_err(
            |source| DomainError::Process {
                domain: name,
                source,
            },
        )?;
        let checkpoints = config
            .dirty_log
            .then(|| CheckpointStore::new(config.memory_size));
        Ok((Cpu::Process(Box::new(cpu)), memory, checkpoints))
    }

    /// The KVM part of [`create`](Self::create).
    fn create_vm(
        host: &KvmHost,
        config: &DomainConfig,
        image: &GuestImage,
    ) -> Result<(Cpu, DomainMemory, Option<CheckpointStore>), DomainError> {
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
        // Hypercall arguments and checkpoints need the registers (and checkpoints the
        // special registers and events): have KVM copy them into the shared run page
        // at every exit instead of asking with an ioctl (about 2 us each on these
        // hosts). See `vcpu_state`.
        let access = VcpuAccess::new(
            host.kvm(),
            &vm,
            &mut vcpu,
            config.mode,
            image,
            config.dirty_log,
        )
        .map_err(|(what, source)| create_err(what)(source))?;
        vcpu.set_cpuid2(host.cpuid())
            .map_err(create_err("KVM_SET_CPUID2"))?;
        let sregs = vcpu.get_sregs().map_err(create_err("KVM_GET_SREGS"))?;
        let sregs = x86_boot::long_mode_sregs(sregs, config.mode, stubs != 0);
        vcpu.set_sregs(&sregs)
            .map_err(create_err("KVM_SET_SREGS"))?;
        let entry_regs = x86_boot::entry_regs(entry);
        vcpu.set_regs(&entry_regs)
            .map_err(create_err("KVM_SET_REGS"))?;
        access.note_regs(&mut vcpu, &entry_regs);
        access.note_sregs(&mut vcpu, &sregs);
        if config.dirty_log {
            // The run page holds zeros until the first exit: a checkpoint before it
            // must find the events KVM starts with.
            let events = vcpu
                .get_vcpu_events()
                .map_err(create_err("KVM_GET_VCPU_EVENTS"))?;
            vcpu.sync_regs_mut().events = events;
        }

        let cpu = KvmCpu {
            vcpu,
            vm,
            dirty_log: dirty_log.map(Mutex::new),
            access,
            declared: None,
        };
        let checkpoints = config
            .dirty_log
            .then(|| CheckpointStore::new(config.memory_size));
        Ok((Cpu::Kvm(Box::new(cpu)), memory, checkpoints))
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

    /// Keeps the run page's copy of the registers equal to what was just set with an
    /// ioctl, for a checkpoint taken before the next exit. KVM does not load it on
    /// entry: only its dirty flag would make it.
    pub(super) fn note_regs(&mut self, regs: &kvm_bindings::kvm_regs) {
        if let Cpu::Kvm(kvm) = &mut self.cpu {
            kvm.access.note_regs(&mut kvm.vcpu, regs);
        }
    }

    /// The general registers: the run page's copy when KVM keeps it, else an ioctl; a
    /// process domain's from its control page.
    pub(super) fn regs(&self) -> Result<kvm_bindings::kvm_regs, DomainError> {
        let kvm = match &self.cpu {
            Cpu::Kvm(kvm) => kvm,
            Cpu::Process(process) => return Ok(process::to_kvm_regs(&process.regs())),
        };
        if kvm.access.sync_regs {
            let regs = kvm.vcpu.sync_regs().regs;
            debug_assert_eq!(kvm.vcpu.get_regs().ok(), Some(regs));
            return Ok(regs);
        }
        kvm.vcpu
            .get_regs()
            .map_err(|source| self.run_error("KVM_GET_REGS", source))
    }

    /// Sets the general registers the guest resumes with.
    pub(super) fn set_regs(&mut self, regs: &kvm_bindings::kvm_regs) -> Result<(), DomainError> {
        match &mut self.cpu {
            Cpu::Process(process) => {
                process.set_regs(&process::from_kvm_regs(regs));
                Ok(())
            }
            Cpu::Kvm(kvm) => {
                if let Err(source) = kvm.vcpu.set_regs(regs) {
                    return Err(self.run_error("KVM_SET_REGS", source));
                }
                self.note_regs(regs);
                Ok(())
            }
        }
    }

    /// The KVM side of a VM domain; an error naming `what` for a process domain.
    pub(super) fn kvm(&self, what: &'static str) -> Result<&KvmCpu, DomainError> {
        match &self.cpu {
            Cpu::Kvm(kvm) => Ok(kvm),
            Cpu::Process(_) => Err(DomainError::NotOnSubstrate {
                domain: self.name.clone(),
                what,
                substrate: Substrate::Process,
            }),
        }
    }

    /// Ends a process domain that took more than
    /// [`OUTSIDE_TURNS_LIMIT`](process::OUTSIDE_TURNS_LIMIT) of CPU time outside its
    /// turns, and returns its fault (to be reported like any other); `None` for a VM,
    /// or a process within the bound. One read of the process's CPU clock.
    pub fn end_if_outside_turns(&mut self) -> Option<DomainFault> {
        let Cpu::Process(process) = &mut self.cpu else {
            return None;
        };
        let cpu = process.cpu_outside_turns()?;
        if cpu <= process::OUTSIDE_TURNS_LIMIT {
            return None;
        }
        process.end();
        Some(DomainFault::RanOutsideItsTurns { cpu })
    }

    /// The process id of a process domain (`None` for a VM).
    pub fn process_id(&self) -> Option<u32> {
        match &self.cpu {
            Cpu::Kvm(_) => None,
            Cpu::Process(process) => Some(process.pid()),
        }
    }

    /// What runs the domain.
    pub fn substrate(&self) -> Substrate {
        match self.cpu {
            Cpu::Kvm(_) => Substrate::Kvm,
            Cpu::Process(_) => Substrate::Process,
        }
    }

    pub(super) fn run_error(&self, what: &'static str, source: kvm_ioctls::Error) -> DomainError {
        DomainError::Run {
            domain: self.name.clone(),
            what,
            source,
        }
    }
}
