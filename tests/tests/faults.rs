//! One test image per way a guest can die: each must be reported as exactly that fault,
//! and the same VMM process must boot another VM correctly afterwards.

use ankh_tests::{assert_hello_boots, boot, kvm, short_watchdog};
use ankh_vmm::{DomainConfig, DomainExit, DomainFault, GuestMode, KvmHost};
use virtio_seep::abi::hypercall::UNASSIGNED_PORT;

/// Boots `image`, returns its fault, then checks the VMM still boots `hello`.
fn fault_of(host: &KvmHost, image: &str, config: DomainConfig) -> DomainFault {
    let done = boot(host, image, config);
    assert_hello_boots(host);
    match done.exit {
        DomainExit::Faulted(fault) => fault,
        other => panic!("{image} should fault, but {other}"),
    }
}

fn cpu_exception(fault: DomainFault) -> (u8, u64, u64, u64) {
    match fault {
        DomainFault::CpuException {
            vector,
            error_code,
            rip,
            cr2,
            ..
        } => (vector, error_code, rip, cr2),
        other => panic!("expected a CPU exception, got {other}"),
    }
}

#[test]
fn ud2_is_an_invalid_opcode_exception() {
    let host = kvm();
    let (vector, _, rip, _) =
        cpu_exception(fault_of(&host, "fault-ud2", DomainConfig::named("ud2")));
    assert_eq!(vector, 6);
    assert!(rip >= 0x10_0000, "rip {rip:#x} inside the image");
}

#[test]
fn every_exception_fault_is_also_reported_in_kernel_mode() {
    let host = kvm();
    for (image, vector) in [("fault-ud2", 6), ("fault-div0", 0), ("fault-page", 14)] {
        let config = DomainConfig::named(image).in_mode(GuestMode::Kernel);
        let (got, ..) = cpu_exception(fault_of(&host, image, config));
        assert_eq!(got, vector, "{image}");
    }
}

#[test]
fn unmapped_read_is_a_page_fault_with_its_address() {
    let host = kvm();
    let (vector, error_code, _, cr2) =
        cpu_exception(fault_of(&host, "fault-page", DomainConfig::named("pf")));
    assert_eq!(vector, 14);
    assert_eq!(cr2, 0x40_0000_0000);
    assert_eq!(error_code & 0b11, 0, "a read of a non-present page");
}

#[test]
fn divide_by_zero_is_a_divide_error() {
    let host = kvm();
    let (vector, ..) = cpu_exception(fault_of(&host, "fault-div0", DomainConfig::named("div0")));
    assert_eq!(vector, 0);
}

#[test]
fn kernel_mode_guest_that_breaks_its_idt_triple_faults() {
    let host = kvm();
    let config = DomainConfig::named("triple").in_mode(GuestMode::Kernel);
    let fault = fault_of(&host, "fault-triple", config);
    assert!(matches!(fault, DomainFault::TripleFault { .. }), "{fault}");
}

#[test]
fn user_mode_guest_cannot_touch_its_idt() {
    let host = kvm();
    // The same image in user mode: `lidt` is privileged, so it is a #GP (vector 13)
    // that the VMM's IDT reports, and exception reporting stays intact.
    let (vector, ..) = cpu_exception(fault_of(&host, "fault-triple", DomainConfig::named("lidt")));
    assert_eq!(vector, 13);
}

#[test]
fn user_mode_guest_cannot_reach_other_ports() {
    let host = kvm();
    // Outside the hypercall range the TSS's I/O bitmap denies user mode: a #GP.
    let (vector, ..) = cpu_exception(fault_of(&host, "fault-port", DomainConfig::named("port")));
    assert_eq!(vector, 13);
}

#[test]
fn sse_instruction_is_reported_as_sse() {
    let host = kvm();
    // In kernel mode: on kvm_pvm hosts user-mode code runs natively and executes SSE
    // (docs/guest-modes.md), so only supervisor code shows what KVM does with SSE.
    let config = DomainConfig::named("sse").in_mode(GuestMode::Kernel);
    let fault = fault_of(&host, "fault-sse", config);
    // KVM here cannot emulate SSE (an emulation failure); a host that runs SSE with
    // CR4.OSFXSR clear raises #UD instead. Both must name the instruction.
    match &fault {
        DomainFault::EmulationFailure { bytes, .. } => {
            assert_eq!(&bytes[..3], [0x0f, 0x57, 0xc0], "{fault}");
        }
        DomainFault::CpuException { vector: 6, .. } => {}
        other => panic!("expected an SSE fault, got {other}"),
    };
    assert_eq!(fault.simd().as_deref(), Some("xorps xmm0,xmm0"));
    assert!(fault.to_string().contains("SSE"), "{fault}");
}

#[test]
fn panic_reports_file_line_and_message() {
    let host = kvm();
    match fault_of(&host, "fault-panic", DomainConfig::named("panic")) {
        DomainFault::GuestPanic {
            file,
            line,
            message,
        } => {
            assert!(file.ends_with("fault-panic.rs"), "{file}");
            assert!(line > 0);
            assert_eq!(message.as_deref(), Some("deliberate panic"));
        }
        other => panic!("expected a guest panic, got {other}"),
    }
}

#[test]
fn spin_without_exits_trips_the_watchdog() {
    let host = kvm();
    let fault = fault_of(&host, "fault-spin", short_watchdog("spin"));
    assert_eq!(
        fault,
        DomainFault::WatchdogTimeout {
            timeout: std::time::Duration::from_millis(200)
        }
    );
}

/// The `fault-spin` image (it never exits) in a domain whose watchdog allows `timeout`.
fn spinner(host: &KvmHost, timeout: std::time::Duration) -> ankh_vmm::Domain {
    let config = DomainConfig {
        watchdog_timeout: timeout,
        ..DomainConfig::named("spin")
    };
    ankh_vmm::Domain::create(
        host,
        &config,
        &ankh_tests::image("fault-spin"),
        Box::new(ankh_vmm::console::CapturedConsole::default()),
    )
    .expect("creating the domain")
}

/// Runs `domain` with a turn ending 20 ms from now; how `resume` came back.
fn run_one_turn(domain: &mut ankh_vmm::Domain) -> (ankh_vmm::RunEvent, std::time::Instant) {
    let turn_end = std::time::Instant::now() + std::time::Duration::from_millis(20);
    domain.set_turn_end(Some(turn_end));
    let event = domain.resume(|_| false).expect("running the domain");
    (event, turn_end)
}

#[test]
fn a_guest_that_never_exits_is_kicked_out_at_the_end_of_its_turn() {
    // The scheduler's preemption: a turn end well before the watchdog's timeout; the
    // watchdog thread kicks the vCPU out of KVM_RUN and `resume` says `Preempted`.
    let host = kvm();
    let mut domain = spinner(&host, std::time::Duration::from_secs(10));
    for _ in 0..3 {
        let (event, turn_end) = run_one_turn(&mut domain);
        assert_eq!(event, ankh_vmm::RunEvent::Preempted);
        assert!(
            std::time::Instant::now() >= turn_end,
            "not before its turn ended"
        );
    }
    // Preemptions are not exits of the guest's: the watchdog's clock kept running, and
    // it stops the spinner after its (short) timeout, preempted or not.
    let mut domain = spinner(&host, std::time::Duration::from_millis(300));
    let mut preempted = 0;
    let exit = loop {
        match run_one_turn(&mut domain).0 {
            ankh_vmm::RunEvent::Preempted => preempted += 1,
            ankh_vmm::RunEvent::Stopped(exit) => break exit,
            other => panic!("{other:?}"),
        }
    };
    assert!(preempted >= 2, "preempted {preempted} times");
    assert!(matches!(
        exit,
        DomainExit::Faulted(DomainFault::WatchdogTimeout { .. })
    ));
}

#[test]
fn write_to_unowned_address_is_reported_with_the_address() {
    let host = kvm();
    let fault = fault_of(&host, "fault-mmio", DomainConfig::named("mmio"));
    assert_eq!(
        fault,
        DomainFault::UnownedAddress {
            gpa: 0xd000_0000,
            len: 4,
            write: true
        }
    );
}

#[test]
fn unknown_hypercall_is_reported_with_the_port() {
    let host = kvm();
    let fault = fault_of(&host, "fault-hypercall", DomainConfig::named("hc"));
    assert_eq!(
        fault,
        DomainFault::UnknownHypercall {
            port: UNASSIGNED_PORT,
            direction: "write",
            size: 4
        }
    );
}
