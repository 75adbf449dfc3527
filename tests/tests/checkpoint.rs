//! Checkpoints and rollback of a real domain.

use ankh_images::expect::{
    CKPT_PAGES, DECLARED_PAGES, DECLARED_PHASES, TRACK_PAGES, TRACK_PHASES, TRACK_REWRITTEN,
    X87_PROBE_CONTROL_WORD,
};
use ankh_tests::{image, kvm, on_both_substrates, substrate, Substrate};
use ankh_vmm::checkpoint::Poison;
use ankh_vmm::console::CapturedConsole;
use ankh_vmm::{
    Domain, DomainConfig, DomainError, DomainExit, DomainFault, DomainState, GuestMode,
};
use virtio_seep::abi::hypercall::Hypercall;
use virtio_seep::abi::layout::DATA_SELECTOR;
use vm_memory::{Bytes, GuestAddress};

// Memory exactness, resuming, poisoning: on both substrates. The vCPU state tests
// below are about what KVM keeps (a process domain's registers and x87 state travel in
// every exit's report).
on_both_substrates!(
    rollback_makes_memory_byte_identical_to_the_checkpoint,
    a_rolled_back_domain_resumes_where_the_checkpoint_was,
    a_failed_checkpoint_poisons_the_domain_until_a_checkpoint_succeeds,
    every_write_is_rolled_back_whatever_its_page_s_tracking_state,
    declared_writes_are_rolled_back_and_take_no_write_fault,
    the_x87_state_of_the_checkpoint_survives_a_rollback,
    a_checkpoint_does_not_keep_the_stack_below_the_stack_pointer,
);

fn probe() -> Domain {
    checkpointed("ckpt-probe", GuestMode::User)
}

/// A domain of `image` that takes checkpoints, in `mode`.
fn checkpointed(image_name: &str, mode: GuestMode) -> Domain {
    let config = DomainConfig {
        dirty_log: true,
        substrate: substrate(),
        ..DomainConfig::named("probe").in_mode(mode)
    };
    Domain::create(
        &kvm(),
        &config,
        &image(image_name),
        Box::new(CapturedConsole::default()),
    )
    .unwrap()
}

fn faults_with_ud2(exit: DomainExit) -> bool {
    matches!(
        exit,
        DomainExit::Faulted(DomainFault::CpuException { vector: 6, .. })
    )
}

fn run_to_nop(domain: &mut Domain) {
    assert_eq!(
        domain.run_until(|call| call == Hypercall::Nop).unwrap(),
        None
    );
}

fn rollback_makes_memory_byte_identical_to_the_checkpoint(_: Substrate) {
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

/// The stack below the stack pointer holds frames that returned: a checkpoint does
/// not keep its pages (a rollback does not bring back what was written there), and
/// keeps every other page written since the last one.
fn a_checkpoint_does_not_keep_the_stack_below_the_stack_pointer(_: Substrate) {
    let stack = image("ckpt-probe")
        .stack()
        .expect("a runtime image names its stack");
    let mut domain = probe();
    run_to_nop(&mut domain);
    domain.checkpoint().unwrap();
    // The probe stops at its Nop a few frames deep: the stack's lowest page is far
    // below its stack pointer.
    let (dead, kept) = (stack.start.next_multiple_of(0x1000), 0x31_0000u64);
    let write = |domain: &Domain, at: u64, what: &[u8]| {
        domain
            .memory()
            .guest()
            .write_slice(what, GuestAddress(at))
            .unwrap()
    };
    write(&domain, dead, b"old");
    write(&domain, kept, b"old");
    domain.checkpoint().unwrap();
    write(&domain, dead, b"new");
    write(&domain, kept, b"new");
    domain.rollback().unwrap();
    let read = |at: u64| {
        let mut bytes = [0u8; 3];
        domain
            .memory()
            .guest()
            .read_slice(&mut bytes, GuestAddress(at))
            .unwrap();
        bytes
    };
    assert_eq!(&read(kept), b"old");
    assert_ne!(&read(dead), b"old", "the dead stack page was kept");
    // The probe still runs on to its second Nop from the rolled-back state.
    run_to_nop(&mut domain);
}

/// `track-probe` writes pages in every state a process domain's write tracking can
/// leave them: cold (protected: the first write is logged), more at once than the log
/// holds (overflow), hot (writable, copied at every checkpoint), cooled down and
/// protected again, then written again. Each phase is checkpointed, run, rolled back
/// (memory must equal the checkpoint byte for byte) and run again.
fn every_write_is_rolled_back_whatever_its_page_s_tracking_state(substrate: Substrate) {
    let mut domain = checkpointed("track-probe", GuestMode::User);
    run_to_nop(&mut domain);
    roll_back_each_phase(&mut domain, TRACK_PHASES);
    if substrate == Substrate::Process {
        let stats = domain
            .write_tracking()
            .expect("a process domain tracks its writes");
        assert!(stats.overflows >= 1, "the log never overflowed: {stats:?}");
        assert!(
            stats.handed_back >= TRACK_PAGES as u64 - 1,
            "the pages did not cool down: {stats:?}"
        );
        assert!(
            stats.logged >= TRACK_REWRITTEN as u64,
            "cooled pages written again were not logged: {stats:?}"
        );
    }
}

/// Runs `phases` phases of a probe, each ending with a `Nop`: checkpointed, run,
/// rolled back (memory must equal the checkpoint byte for byte, and differ from it
/// before the rollback) and run again.
fn roll_back_each_phase(domain: &mut Domain, phases: usize) {
    for phase in 0..phases {
        domain.checkpoint().unwrap();
        let at_checkpoint = domain.memory_hash();
        run_to_nop(domain);
        assert_ne!(
            domain.memory_hash(),
            at_checkpoint,
            "phase {phase} wrote nothing"
        );
        domain.rollback().unwrap();
        assert_eq!(domain.memory_hash(), at_checkpoint, "phase {phase}");
        run_to_nop(domain);
    }
}

/// `declared-probe` names a region of its RAM whose writes it declares itself (a
/// process domain then logs them without a write fault, a VM without KVM's dirty log),
/// is rolled back to before it did and names it again, then writes it phase by phase,
/// the first phase more pages than a process domain's log holds. Each phase is
/// checkpointed, run, rolled back (memory must equal the checkpoint byte for byte) and
/// run again.
fn declared_writes_are_rolled_back_and_take_no_write_fault(substrate: Substrate) {
    let mut domain = checkpointed("declared-probe", GuestMode::User);
    assert!(
        domain.takes_declared_writes(),
        "a {substrate:?} domain with checkpoints takes no declared writes here (a VM needs \
         KVM's dirty ring, KVM_CAP_DIRTY_LOG_RING)"
    );
    run_to_nop(&mut domain);
    // Back to before the region was named: the domain names it again, no harm done.
    domain.checkpoint().unwrap();
    run_to_nop(&mut domain);
    domain.rollback().unwrap();
    run_to_nop(&mut domain);
    // Counted from a look: the traps of the run so far are all in.
    domain.checkpoint().unwrap();
    let traps_before = domain.trapped_writes();
    roll_back_each_phase(&mut domain, DECLARED_PHASES);
    let exit = domain.run().unwrap();
    assert_eq!(
        exit,
        DomainExit::Exited { code: 0 },
        "the region was not declared"
    );
    let logged = domain.declared_pages_logged().unwrap_or(0);
    assert!(
        logged >= (DECLARED_PAGES + 2 * (DECLARED_PHASES - 1)) as u64,
        "the declared writes were not logged by the domain: {logged} pages"
    );
    if let Some(stats) = domain.write_tracking() {
        assert!(stats.overflows >= 1, "the log never overflowed: {stats:?}");
    }
    // The stack and the runtime's own pages may trap; the region's 330 may not.
    let (before, after) = (traps_before.unwrap(), domain.trapped_writes().unwrap());
    assert!(
        after - before < 16,
        "declared pages took write faults: {before} before, {after} after"
    );
}

/// `x87-probe` loads a control word before its second `Nop` and checks it after: a
/// rollback to that `Nop` (after it reset its x87 unit and faulted) must give the
/// state back, on either substrate (a process domain saves it only for checkpoints).
fn the_x87_state_of_the_checkpoint_survives_a_rollback(_: Substrate) {
    let mut domain = checkpointed("x87-probe", GuestMode::User);
    domain.save_fpu_at_every_checkpoint();
    run_to_nop(&mut domain);
    domain.checkpoint().unwrap();
    run_to_nop(&mut domain);
    domain.checkpoint().unwrap();
    let exit = domain.run().unwrap();
    assert!(faults_with_ud2(exit.clone()), "{exit}");
    domain.rollback().unwrap();
    let exit = domain.run().unwrap();
    assert!(faults_with_ud2(exit.clone()), "after the rollback: {exit}");
    // Twice: the second rollback restores what the first resume saved again.
    domain.rollback().unwrap();
    let exit = domain.run().unwrap();
    assert!(
        faults_with_ud2(exit.clone()),
        "after the second rollback: {exit}"
    );
}

fn a_rolled_back_domain_resumes_where_the_checkpoint_was(_: Substrate) {
    let mut domain = probe();
    run_to_nop(&mut domain);
    domain.checkpoint().unwrap();
    assert!(matches!(domain.run().unwrap(), DomainExit::Faulted(_)));
    domain.rollback().unwrap();
    // From the first Nop it writes again and reaches the second Nop, not the start.
    run_to_nop(&mut domain);
    let copied = domain.checkpoint().unwrap();
    assert!(copied >= CKPT_PAGES, "the second pass wrote {copied} pages");
    let at_second = domain.memory_hash();
    assert!(matches!(domain.run().unwrap(), DomainExit::Faulted(_)));
    domain.rollback().unwrap();
    assert_eq!(domain.memory_hash(), at_second);
    // Back at the second Nop: what follows is the `ud2`, not another Nop.
    match domain.run_until(|call| call == Hypercall::Nop).unwrap() {
        Some(exit) => assert!(faults_with_ud2(exit.clone()), "{exit}"),
        None => panic!("rolled back to the first checkpoint, not the second"),
    }
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

/// Runs `image` (a probe that makes a `Nop`, changes some vCPU state, makes a second
/// `Nop`, changes it again and executes `ud2`) with a checkpoint at each `Nop`, rolls
/// it back after the fault, and returns the vCPU state at both checkpoints. Asserts
/// that the rollback restored the state of the second checkpoint exactly.
fn changed_state_is_rolled_back(
    image_name: &str,
    mode: GuestMode,
    uses_fpu: bool,
) -> (
    ankh_vmm::domain::VcpuSnapshot,
    ankh_vmm::domain::VcpuSnapshot,
) {
    let mut domain = checkpointed(image_name, mode);
    if uses_fpu {
        domain.save_fpu_at_every_checkpoint();
    }
    run_to_nop(&mut domain);
    domain.checkpoint().unwrap();
    let first = domain.vcpu_snapshot().unwrap();
    run_to_nop(&mut domain);
    // The guest changed its state since the first checkpoint: no panic, a checkpoint.
    domain.checkpoint().unwrap();
    let second = domain.vcpu_snapshot().unwrap();
    assert!(faults_with_ud2(domain.run().unwrap()));
    assert_ne!(domain.vcpu_snapshot().unwrap(), second, "changed again");
    domain.rollback().unwrap();
    assert_eq!(domain.vcpu_snapshot().unwrap(), second);
    // It resumes at the second Nop: straight on to the fault.
    assert!(faults_with_ud2(domain.run().unwrap()));
    (first, second)
}

#[test]
fn a_rollback_restores_the_segment_registers_a_kernel_mode_guest_loaded() {
    // Kernel mode also reads and writes back the privileged state (MSRs, XCR0, debug
    // registers) at every checkpoint and rollback.
    let (first, second) = changed_state_is_rolled_back("segment-probe", GuestMode::Kernel, false);
    assert_eq!(first.sregs.ds.selector, DATA_SELECTOR);
    for segment in [
        second.sregs.ds,
        second.sregs.es,
        second.sregs.fs,
        second.sregs.gs,
    ] {
        assert_eq!(segment.selector, 0, "{segment:?}");
    }
}

#[test]
fn a_rollback_restores_the_vcpu_state_of_a_user_mode_guest_that_loaded_segments() {
    // On kvm_pvm hosts KVM does not report a user-mode guest's data segment loads in
    // its special registers (they read as the user data selector before and after),
    // so only exactness is checked here; the kernel-mode test sees the change.
    changed_state_is_rolled_back("segment-probe", GuestMode::User, false);
}

#[test]
fn a_rollback_restores_the_x87_state_of_the_checkpoint() {
    // User mode: on kvm_pvm hosts supervisor code is emulated, and KVM's emulator
    // does not know `fldcw`.
    let (first, second) = changed_state_is_rolled_back("x87-probe", GuestMode::User, true);
    assert_ne!(first.fpu.fcw, X87_PROBE_CONTROL_WORD);
    assert_eq!(second.fpu.fcw, X87_PROBE_CONTROL_WORD);
    assert_ne!(first.fpu.fpr, second.fpu.fpr, "1 and pi pushed");
}

#[test]
fn a_guest_that_used_the_fpu_unannounced_is_not_rolled_back_to_a_stale_fpu_state() {
    // Saved lazily (guests are built without floating point): the x87 state of the
    // second checkpoint was carried over from the first, so it is unknown; the
    // rollback sees the guest's FPU state changed and refuses, changing nothing.
    let mut domain = checkpointed("x87-probe", GuestMode::User);
    run_to_nop(&mut domain);
    domain.checkpoint().unwrap();
    run_to_nop(&mut domain);
    domain.checkpoint().unwrap();
    assert!(faults_with_ud2(domain.run().unwrap()));
    let at_fault = domain.memory_hash();
    assert!(matches!(
        domain.rollback(),
        Err(DomainError::CarriedStateChanged {
            what: "FPU state",
            ..
        })
    ));
    assert_eq!(
        domain.memory_hash(),
        at_fault,
        "a refused rollback changes nothing"
    );
    assert!(matches!(
        domain.rollback(),
        Err(DomainError::Poisoned { .. })
    ));
}

#[test]
fn a_guest_that_never_used_the_fpu_is_rolled_back_without_reading_it_each_time() {
    // The segment probe uses no FPU: its carried-over state is still exact.
    changed_state_is_rolled_back("segment-probe", GuestMode::User, false);
}

fn a_failed_checkpoint_poisons_the_domain_until_a_checkpoint_succeeds(_: Substrate) {
    let mut domain = probe();
    run_to_nop(&mut domain);
    domain.checkpoint().unwrap();
    run_to_nop(&mut domain);
    let at_second_nop = domain.memory_hash();
    domain.fail_next_checkpoint_after(3).unwrap();
    assert!(matches!(
        domain.checkpoint(),
        Err(DomainError::PageCopy { .. })
    ));
    // The shadow now holds 3 pages of the second pass and the rest of the first:
    // rolling back to it would mix two states.
    assert!(matches!(
        domain.rollback(),
        Err(DomainError::Poisoned {
            cause: Poison::Checkpoint,
            ..
        })
    ));
    assert_eq!(
        domain.memory_hash(),
        at_second_nop,
        "a refused rollback changes nothing"
    );
    assert!(faults_with_ud2(domain.run().unwrap()));
    assert!(
        matches!(domain.rollback(), Err(DomainError::Poisoned { .. })),
        "still poisoned after the fault"
    );
}

#[test]
fn a_checkpoint_after_a_failed_one_is_complete() {
    let mut domain = probe();
    run_to_nop(&mut domain);
    domain.checkpoint().unwrap();
    run_to_nop(&mut domain);
    domain.fail_next_checkpoint_after(3).unwrap();
    assert!(domain.checkpoint().is_err());
    // The pages the failed checkpoint did not copy are copied now.
    assert!(domain.checkpoint().unwrap() >= CKPT_PAGES - 3);
    let at_checkpoint = domain.memory_hash();
    let registers = domain.vcpu_snapshot().unwrap();
    assert!(faults_with_ud2(domain.run().unwrap()));
    domain.rollback().unwrap();
    assert_eq!(domain.memory_hash(), at_checkpoint);
    assert_eq!(domain.vcpu_snapshot().unwrap(), registers);
}

#[test]
fn a_user_mode_guest_that_writes_its_code_taints_its_checkpoints() {
    let mut domain = checkpointed("code-writer", GuestMode::User);
    run_to_nop(&mut domain);
    domain.checkpoint().unwrap();
    assert_eq!(
        domain.checkpoint_tainted(),
        Some(false),
        "image loading is no write"
    );
    run_to_nop(&mut domain);
    domain.checkpoint().unwrap();
    assert_eq!(domain.checkpoint_tainted(), Some(true));
    let registers = domain.vcpu_snapshot().unwrap();
    assert!(faults_with_ud2(domain.run().unwrap()));
    domain.rollback().unwrap();
    assert_eq!(domain.vcpu_snapshot().unwrap(), registers);
    assert_eq!(
        domain.checkpoint_tainted(),
        Some(true),
        "until rolled back before it"
    );
}

#[test]
fn a_user_mode_guest_that_leaves_its_code_alone_is_never_tainted() {
    let mut domain = probe();
    run_to_nop(&mut domain);
    domain.checkpoint().unwrap();
    run_to_nop(&mut domain);
    domain.checkpoint().unwrap();
    assert_eq!(domain.checkpoint_tainted(), Some(false));
}
