//! How a domain stops: a clean exit, or a typed fault naming what the guest did.
//!
//! Every way a guest can stop maps to exactly one [`DomainExit`]; nothing a guest does
//! is an error of the VMM itself (those are `DomainError`, for host-side failures).

use std::fmt;
use std::sync::OnceLock;

use crate::devices::DeviceFault;
use crate::ipc::IpcFault;
use std::time::Duration;

/// How a domain's run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DomainExit {
    /// The guest made the `Exit` hypercall with this code.
    Exited {
        /// The guest's exit code (0: success).
        code: u32,
    },
    /// The guest executed `hlt` with nothing left to wait for.
    Halted,
    /// The guest did something that stops it.
    Faulted(DomainFault),
}

impl DomainExit {
    /// True for a clean stop (exit hypercall or `hlt`), whatever the exit code.
    pub fn is_clean(&self) -> bool {
        !matches!(self, DomainExit::Faulted(_))
    }
}

impl fmt::Display for DomainExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainExit::Exited { code } => write!(f, "exited with code {code}"),
            DomainExit::Halted => write!(f, "halted"),
            DomainExit::Faulted(fault) => write!(f, "fault: {fault}"),
        }
    }
}

/// A fault of one domain: the guest did something it must not, or died.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DomainFault {
    /// The guest took a CPU exception (reported by its runtime's exception handler).
    #[error("CPU exception {vector} ({name}) at rip {rip:#x}, error code {error_code:#x}{}{}", cr2_text(*vector, *cr2), simd_hint(self.simd()), name = exception_name(*vector))]
    CpuException {
        /// The exception vector (0 = #DE, 6 = #UD, 14 = #PF, ...).
        vector: u8,
        /// The error code the CPU pushed (0 for vectors without one).
        error_code: u64,
        /// Address of the faulting instruction.
        rip: u64,
        /// CR2 at the time of the fault (the faulting address of a #PF).
        cr2: u64,
        /// The bytes at `rip` for a #UD (empty for other vectors, or when they could
        /// not be read): an SSE/AVX instruction on a host that does not enable SSE for
        /// guests is named from them (see [`DomainFault::simd`]).
        instruction: Vec<u8>,
    },
    /// The guest triple-faulted (KVM_EXIT_SHUTDOWN): an exception while delivering an
    /// exception, e.g. with no usable IDT.
    #[error("triple fault at rip {rip:#x}")]
    TripleFault {
        /// RIP when KVM reported the shutdown.
        rip: u64,
    },
    /// KVM could not emulate an instruction of the guest.
    #[error(
        "KVM emulation failure at rip {rip:#x} (bytes there: {}){}",
        hex_bytes(bytes),
        simd_hint(self.simd())
    )]
    EmulationFailure {
        /// Address of the instruction KVM failed on.
        rip: u64,
        /// The instruction's bytes (from KVM, or read at RIP).
        bytes: Vec<u8>,
    },
    /// The guest panicked.
    #[error("guest panic at {file}:{line}{}", message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    GuestPanic {
        /// Source file of the panic, as the guest reported it.
        file: String,
        /// Line of the panic.
        line: u32,
        /// The panic message when it was a static string.
        message: Option<String>,
    },
    /// The guest used an I/O port that is not a hypercall, or a hypercall port the wrong
    /// way (an `in`, or a write that is not 4 bytes wide).
    #[error("unknown hypercall: {direction} of {size} bytes on port {port:#x}")]
    UnknownHypercall {
        /// The I/O port.
        port: u16,
        /// "write" or "read".
        direction: &'static str,
        /// Access width in bytes.
        size: usize,
    },
    /// A known hypercall with an argument the VMM refuses (bad pointer, length too large).
    #[error("bad argument to hypercall {call}: {reason}")]
    BadHypercallArgument {
        /// The hypercall's name.
        call: &'static str,
        /// What was wrong with it.
        reason: String,
    },
    /// The guest accessed a guest-physical address that neither RAM nor a device owns.
    #[error("{} of {len} bytes at guest-physical address {gpa:#x}, which no device owns", if *write { "write" } else { "read" })]
    UnownedAddress {
        /// The guest-physical address.
        gpa: u64,
        /// Access width in bytes.
        len: usize,
        /// True for a write.
        write: bool,
    },
    /// The guest ran longer than the watchdog allows without a single exit.
    #[error("watchdog: no exit for more than {} ms", timeout.as_millis())]
    WatchdogTimeout {
        /// The watchdog timeout in force.
        timeout: Duration,
    },
    /// A server ran longer than its per-request budget on one request, exiting all
    /// along (a loop through hypercalls the watchdog cannot see): a hang.
    #[error("request over its budget: ran more than {} ms on one request", budget.as_millis())]
    RequestOverBudget {
        /// The budget in force.
        budget: Duration,
    },
    /// A fault injected on purpose (hot-kill, fault-injection campaigns).
    #[error("injected fault ({0})")]
    Injected(&'static str),
    /// The process manager killed it (`SYS_KILL_DOMAIN`).
    #[error("killed by domain {by}")]
    Killed {
        /// The domain that asked.
        by: u32,
    },
    /// The domain misused IPC (a malformed message, a forbidden destination, ...).
    #[error("IPC fault: {0}")]
    Ipc(#[from] IpcFault),
    /// The domain misused its device (a bad register access, a malformed request, ...).
    #[error("device fault: {0}")]
    Device(#[from] DeviceFault),
    /// KVM stopped the guest for a reason the VMM does not expect from its guests
    /// (e.g. a failed VM entry).
    #[error("unexpected KVM exit: {reason}")]
    UnexpectedExit {
        /// The exit as KVM reported it.
        reason: String,
    },
    /// A process domain made a system call its seccomp filter refuses (a VM's guest
    /// has no system calls at all: `syscall` faults there as #UD).
    #[error("forbidden system call {number}")]
    ForbiddenSyscall {
        /// The system call's number (x86-64).
        number: u32,
    },
    /// A process domain took CPU time outside its turns: it handed the VMM its turn
    /// and computed on instead of waiting for it (see `domain::process::turns`).
    #[error(
        "ran {} ms of CPU time outside its turns (it handed the VMM its turn and went on)",
        cpu.as_millis()
    )]
    RanOutsideItsTurns {
        /// The CPU time outside its turns, at least.
        cpu: Duration,
    },
    /// A process domain's process ended without an exit hypercall (killed by a signal
    /// from outside, or stopped in its setup), or got a signal it cannot explain.
    #[error("the domain's process {what}")]
    ProcessDied {
        /// What happened to it.
        what: String,
    },
}

impl DomainFault {
    /// A short, stable name of the fault's kind, for logs, JSON and tests.
    pub fn kind(&self) -> &'static str {
        match self {
            DomainFault::CpuException { .. } => "cpu-exception",
            DomainFault::TripleFault { .. } => "triple-fault",
            DomainFault::EmulationFailure { .. } => "emulation-failure",
            DomainFault::GuestPanic { .. } => "guest-panic",
            DomainFault::UnknownHypercall { .. } => "unknown-hypercall",
            DomainFault::BadHypercallArgument { .. } => "bad-hypercall-argument",
            DomainFault::UnownedAddress { .. } => "unowned-address",
            DomainFault::WatchdogTimeout { .. } => "watchdog-timeout",
            DomainFault::RequestOverBudget { .. } => "request-over-budget",
            DomainFault::Ipc(fault) => fault.kind(),
            DomainFault::Device(fault) => fault.kind(),
            DomainFault::Killed { .. } => "killed",
            DomainFault::Injected(_) => "injected",
            DomainFault::UnexpectedExit { .. } => "unexpected-exit",
            DomainFault::ForbiddenSyscall { .. } => "forbidden-syscall",
            DomainFault::ProcessDied { .. } => "process-died",
            DomainFault::RanOutsideItsTurns { .. } => "outside-turns",
        }
    }

    /// What the fault says beyond its kind, for a person reading a recovery: where
    /// and why a guest panicked, which exception at which instruction, which IPC or
    /// device rule was broken. `None` for faults whose kind says it all (a kill, an
    /// injection, a timeout).
    pub fn detail(&self) -> Option<String> {
        match self {
            DomainFault::GuestPanic { .. }
            | DomainFault::CpuException { .. }
            | DomainFault::TripleFault { .. }
            | DomainFault::Ipc(_)
            | DomainFault::Device(_)
            | DomainFault::BadHypercallArgument { .. }
            | DomainFault::UnknownHypercall { .. }
            | DomainFault::ForbiddenSyscall { .. }
            | DomainFault::RanOutsideItsTurns { .. } => Some(self.to_string()),
            _ => None,
        }
    }
}

/// The mnemonic of an x86 exception vector.
pub fn exception_name(vector: u8) -> &'static str {
    const NAMES: [&str; 32] = [
        "#DE divide error",
        "#DB debug",
        "NMI",
        "#BP breakpoint",
        "#OF overflow",
        "#BR bound range",
        "#UD invalid opcode",
        "#NM device not available",
        "#DF double fault",
        "coprocessor segment overrun",
        "#TS invalid TSS",
        "#NP segment not present",
        "#SS stack fault",
        "#GP general protection",
        "#PF page fault",
        "reserved",
        "#MF x87 floating point",
        "#AC alignment check",
        "#MC machine check",
        "#XM SIMD floating point",
        "#VE virtualization",
        "#CP control protection",
        "reserved",
        "reserved",
        "reserved",
        "reserved",
        "reserved",
        "reserved",
        "#HV hypervisor injection",
        "#VC VMM communication",
        "#SX security",
        "reserved",
    ];
    NAMES
        .get(usize::from(vector))
        .copied()
        .unwrap_or("external interrupt")
}

/// Vector of the page-fault exception.
pub const PAGE_FAULT_VECTOR: u8 = 14;
/// Vector of the invalid-opcode exception.
pub const INVALID_OPCODE_VECTOR: u8 = 6;

fn cr2_text(vector: u8, cr2: u64) -> String {
    if vector == PAGE_FAULT_VECTOR {
        format!(", faulting address {cr2:#x}")
    } else {
        String::new()
    }
}

fn hex_bytes(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "unavailable".into();
    }
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    hex.join(" ")
}

/// Names an instruction from its bytes and address when it is SSE/AVX (`None` for
/// other instructions): `ankh_images::simd::describe_simd`, given by whoever runs the
/// VMM, so that the VMM core does not decode x86 itself.
pub type SimdNamer = fn(&[u8], u64) -> Option<String>;

static SIMD_NAMER: OnceLock<SimdNamer> = OnceLock::new();

/// Names SSE/AVX instructions in faults with `namer` from now on (the first namer
/// given stays; without one, faults show the raw bytes only). A pure function of the
/// bytes, so one for the whole process is enough.
pub fn name_simd_with(namer: SimdNamer) {
    let _ = SIMD_NAMER.set(namer);
}

impl DomainFault {
    /// The faulting instruction, decoded, when it is an SSE/AVX instruction (a #UD or
    /// an emulation failure on a host that cannot run SSE in guests) and a namer was
    /// given ([`name_simd_with`]).
    pub fn simd(&self) -> Option<String> {
        let (bytes, rip) = match self {
            DomainFault::CpuException {
                instruction, rip, ..
            } => (instruction, *rip),
            DomainFault::EmulationFailure { bytes, rip } => (bytes, *rip),
            _ => return None,
        };
        if bytes.is_empty() {
            return None;
        }
        SIMD_NAMER.get().and_then(|name| name(bytes, rip))
    }
}

fn simd_hint(simd: Option<String>) -> String {
    match simd {
        Some(insn) => format!(
            ": `{insn}` is an SSE/AVX instruction, which KVM cannot run on this host; \
             build guests SSE-free (see images/ and ENVIRONMENT notes)"
        ),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_fault_message_names_the_address() {
        let fault = DomainFault::CpuException {
            vector: 14,
            error_code: 0,
            rip: 0x100000,
            cr2: 0x40_0000_0000,
            instruction: Vec::new(),
        };
        let text = fault.to_string();
        assert!(text.contains("#PF page fault"), "{text}");
        assert!(text.contains("0x4000000000"), "{text}");
    }

    #[test]
    fn emulation_failure_points_at_sse() {
        fn namer(bytes: &[u8], _rip: u64) -> Option<String> {
            (bytes == [0x0f, 0x57, 0xc0]).then(|| "xorps xmm0,xmm0".into())
        }
        name_simd_with(namer);
        let fault = DomainFault::EmulationFailure {
            rip: 0x100010,
            bytes: vec![0x0f, 0x57, 0xc0],
        };
        let text = fault.to_string();
        assert!(text.contains("`xorps xmm0,xmm0`"), "{text}");
        assert!(text.contains("0f 57 c0"), "{text}");
        assert!(text.contains("SSE-free"), "{text}");
    }

    #[test]
    fn every_vector_has_a_name() {
        assert_eq!(exception_name(0), "#DE divide error");
        assert_eq!(exception_name(14), "#PF page fault");
        assert_eq!(exception_name(200), "external interrupt");
    }
}
