//! Checkpoints and rollback of a real domain.

use ankh_images::expect::CKPT_PAGES;
use ankh_tests::{image, kvm};
use ankh_vmm::console::CapturedConsole;
use ankh_vmm::{Domain, DomainConfig, DomainExit, DomainFault, DomainState};
use virtio_seep::abi::hypercall::Hypercall;
use vm_memory::{Bytes, GuestAddress};

fn probe() -> Domain {
    let config = DomainConfig {
        dirty_log: true,
        ..DomainConfig::named("probe")
    };
    Domain::create(
        &kvm(),
        &config,
        &image("ckpt-probe"),
        Box::new(CapturedConsole::default()),
    )
    .unwrap()
}

fn run_to_nop(domain: &mut Domain) {
    assert_eq!(
        domain.run_until(|call| call == Hypercall::Nop).unwrap(),
        None
    );
}

#[test]
fn rollback_makes_memory_byte_identical_to_the_checkpoint() {
    let mut domain = probe();
    run_to_nop(&mut domain);
    domain.checkpoint().unwrap();
    let at_checkpoint = domain.memory_hash();

    // The guest writes CKPT_PAGES pages and faults; the VMM writes a page too.
    let exit = domain.run().unwrap();
    assert!(matches!(
        exit,
        DomainExit::Faulted(DomainFault::CpuException { vector: 6, .. })
    ));
    domain
        .memory()
        .guest()
        .write_slice(b"vmm", GuestAddress(0x30_0000))
        .unwrap();
    assert_ne!(domain.memory_hash(), at_checkpoint);

    let restored = domain.rollback().unwrap();
    assert!(restored > CKPT_PAGES, "restored {restored} pages");
    assert_eq!(domain.memory_hash(), at_checkpoint);
    assert_eq!(domain.state(), &DomainState::Ready);
}

#[test]
fn a_rolled_back_domain_resumes_where_the_checkpoint_was() {
    let mut domain = probe();
    run_to_nop(&mut domain);
    domain.checkpoint().unwrap();
    assert!(matches!(domain.run().unwrap(), DomainExit::Faulted(_)));
    domain.rollback().unwrap();
    // From the first Nop it writes again and reaches the second Nop, not the start.
    run_to_nop(&mut domain);
    let copied = domain.checkpoint().unwrap();
    assert!(copied >= CKPT_PAGES, "the second pass wrote {copied} pages");
    assert!(matches!(domain.run().unwrap(), DomainExit::Faulted(_)));
    assert!(
        domain.rollback().unwrap() > 0,
        "rolls back to the second checkpoint"
    );
}

#[test]
fn checkpoints_need_the_dirty_log() {
    let mut domain = Domain::create(
        &kvm(),
        &DomainConfig::named("plain"),
        &image("ckpt-probe"),
        Box::new(CapturedConsole::default()),
    )
    .unwrap();
    assert!(matches!(
        domain.checkpoint(),
        Err(ankh_vmm::DomainError::NoCheckpoints)
    ));
    assert!(matches!(
        domain.rollback(),
        Err(ankh_vmm::DomainError::NoCheckpoints)
    ));
}
