//! A hostile process domain asks the host kernel for what a domain must never get:
//! a host file, a descriptor it does not own, ptrace, a signal to every process it can
//! reach (the VMM included), any other system call; or it scribbles over the page its
//! tender shares with the VMM. Each attempt faults that domain, typed, and nothing else
//! is harmed: the VMM (this test process) lives on and boots the next domain. In a
//! VM the same image meets no host kernel at all: `syscall` faults.

use ankh_tests::{assert_hello_boots_on, boot, kvm, Substrate};
use ankh_vmm::{DomainConfig, DomainExit, DomainFault};

/// The attempts of `syscall-probe` (picked by the domain's name), with the system
/// call each makes.
const ATTEMPTS: [(&str, u32); 5] = [
    ("open", 2),
    ("mmap", 9),
    ("ptrace", 101),
    ("kill", 62),
    ("getpid", 39),
];

fn probe(substrate: Substrate, name: &str) -> DomainExit {
    let host = kvm();
    let config = DomainConfig {
        substrate,
        ..DomainConfig::named(name)
    };
    let exit = boot(&host, "syscall-probe", config).exit;
    assert_hello_boots_on(&host, substrate);
    exit
}

#[test]
fn a_process_domain_s_system_calls_are_refused_and_fault_it() {
    for (name, number) in ATTEMPTS {
        let exit = probe(Substrate::Process, name);
        assert_eq!(
            exit,
            DomainExit::Faulted(DomainFault::ForbiddenSyscall { number }),
            "{name}"
        );
    }
}

#[test]
fn a_vm_domain_has_no_system_calls_to_make() {
    for (name, _) in ATTEMPTS {
        // SYSCALL is off in EFER (#UD), or, where the hypervisor leaves it on (as
        // kvm_pvm does), enters at LSTAR = 0, the unmapped null page (#PF at rip 0).
        match probe(Substrate::Kvm, name) {
            DomainExit::Faulted(DomainFault::CpuException { vector: 6, .. }) => {}
            DomainExit::Faulted(DomainFault::CpuException {
                vector: 14, rip: 0, ..
            }) => {}
            other => panic!("{name}: {other}"),
        }
    }
}

#[test]
fn scribbling_over_the_control_page_harms_only_the_scribbler() {
    // A VM has nothing there: the first write faults.
    match probe(Substrate::Kvm, "scribble") {
        DomainExit::Faulted(DomainFault::CpuException { vector: 14, .. }) => {}
        other => panic!("kvm: {other}"),
    }
    // A process domain overwrites its own report page: whatever it then gets, it ends
    // (the VMM reads the page as guest input) and the VMM boots the next domain.
    let exit = probe(Substrate::Process, "scribble");
    assert!(
        matches!(exit, DomainExit::Exited { .. } | DomainExit::Faulted(_)),
        "process: {exit}"
    );
}

/// A process domain called `name` running `image`, with checkpoints, stopped at its
/// first Nop.
fn at_first_nop(host: &ankh_vmm::KvmHost, name: &str, image: &str) -> ankh_vmm::Domain {
    let config = DomainConfig {
        substrate: Substrate::Process,
        dirty_log: true,
        ..DomainConfig::named(name)
    };
    let mut domain = ankh_vmm::Domain::create(
        host,
        &config,
        &ankh_tests::image(image),
        Box::new(ankh_vmm::console::CapturedConsole::default()),
    )
    .expect("creating the domain");
    assert_eq!(
        domain
            .run_until(|call| call == virtio_seep::abi::hypercall::Hypercall::Nop)
            .unwrap(),
        None
    );
    domain
}

#[test]
fn a_process_domain_killed_from_outside_is_a_typed_fault_of_that_domain() {
    let host = kvm();
    // Mid-run: stopped at its first Nop, the process is killed by someone else.
    let mut domain = at_first_nop(&host, "victim", "nop-loop");
    domain.checkpoint().unwrap();
    let pid = domain.process_id().expect("a process domain has a process");
    // SAFETY: `pid` is the domain's process, a child of this test process (not yet
    // reaped, so it names no other process).
    assert_eq!(unsafe { libc::kill(pid.cast_signed(), libc::SIGKILL) }, 0);
    match domain.run().unwrap() {
        DomainExit::Faulted(DomainFault::ProcessDied { .. }) => {}
        other => panic!("{other}"),
    }
    // Nothing left to resume: recovery must restart it, not roll it back.
    assert!(matches!(
        domain.rollback(),
        Err(ankh_vmm::DomainError::ProcessGone { .. })
    ));
    assert_hello_boots_on(&host, Substrate::Process);
}

#[test]
fn a_scribbled_write_log_and_hand_back_list_harm_only_the_scribbler() {
    let host = kvm();
    // It overwrites the whole control page (the write log, its length and overflow
    // flag, the hand-back list) with garbage, then makes its Nop through the page.
    let mut domain = at_first_nop(&host, "scribble", "syscall-probe");
    // The VMM reads the log as guest input: the page numbers outside guest RAM are
    // ignored, the overflow makes it read the writable mappings, and the checkpoint
    // and a rollback to it go through.
    domain.checkpoint().unwrap();
    let stats = domain.write_tracking().expect("tracked");
    assert!(stats.bogus > 0, "{stats:?}");
    assert!(stats.overflows > 0, "{stats:?}");
    let at_checkpoint = domain.memory_hash();
    domain.rollback().unwrap();
    assert_eq!(domain.memory_hash(), at_checkpoint);
    // Whatever it does next ends it, typed; the next domain boots.
    let exit = domain.run().unwrap();
    assert!(
        matches!(exit, DomainExit::Exited { .. } | DomainExit::Faulted(_)),
        "{exit}"
    );
    assert_hello_boots_on(&host, Substrate::Process);
}

/// The `Max ...` line of `/proc/PID/limits` for `what`: (soft, hard).
fn limit_of(pid: u32, what: &str) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|line| line.starts_with(what))
        .unwrap_or_else(|| panic!("no {what:?} in {limits}"));
    let mut fields = line[what.len()..].split_whitespace();
    (
        fields.next().unwrap().to_owned(),
        fields.next().unwrap().to_owned(),
    )
}

#[test]
fn a_process_domain_can_leave_no_core_file_and_grow_no_large_stack() {
    let host = kvm();
    let domain = at_first_nop(&host, "limited", "nop-loop");
    let pid = domain.process_id().expect("a process domain has a process");
    assert_eq!(
        limit_of(pid, "Max core file size"),
        ("0".into(), "0".into())
    );
    let (soft, hard) = limit_of(pid, "Max stack size");
    assert_eq!(soft, hard, "the domain cannot raise it");
    let stack: u64 = soft.parse().expect("a bounded stack");
    assert!(stack <= 1 << 20, "stack limit {stack}");
}
