//! Booting well-behaved guests on /dev/kvm.

use ankh_tests::{assert_hello_boots, boot, kvm};
use ankh_vmm::{DomainConfig, DomainExit, DomainState};

#[test]
fn hello_prints_its_line_and_halts_cleanly() {
    let host = kvm();
    let done = boot(&host, "hello", DomainConfig::named("greeter"));
    assert_eq!(done.exit, DomainExit::Exited { code: 0 });
    assert_eq!(done.lines, ["hello from greeter"]);
}

#[test]
fn exit_code_reaches_the_vmm() {
    let host = kvm();
    let done = boot(&host, "exit7", DomainConfig::named("seven"));
    assert_eq!(done.exit, DomainExit::Exited { code: 7 });
    assert!(done.exit.is_clean());
}

#[test]
fn many_domains_boot_in_one_process() {
    let host = kvm();
    for _ in 0..20 {
        assert_hello_boots(&host);
    }
}

#[test]
fn a_stopped_domain_refuses_to_run_again() {
    let host = kvm();
    let image = ankh_tests::image("exit7");
    let mut domain = ankh_vmm::Domain::create(
        &host,
        &DomainConfig::named("once"),
        &image,
        Box::new(ankh_vmm::console::CapturedConsole::default()),
    )
    .unwrap();
    assert_eq!(domain.run().unwrap(), DomainExit::Exited { code: 7 });
    assert_eq!(
        domain.state(),
        &DomainState::Stopped(DomainExit::Exited { code: 7 })
    );
    assert!(matches!(
        domain.run(),
        Err(ankh_vmm::DomainError::AlreadyStopped { .. })
    ));
}

#[test]
fn nop_hypercalls_resume_the_guest() {
    let host = kvm();
    let done = boot(&host, "nop-loop", DomainConfig::named("nops"));
    assert_eq!(done.exit, DomainExit::Exited { code: 0 });
}
