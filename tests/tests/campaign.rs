//! Fault-injection campaigns: hardware-breakpoint injection into a domain (each fault
//! type does what it says), and `ankh campaign`'s plans and outcomes on the real OS.

use std::sync::Arc;

use ankh_tests::{image, kvm, short_watchdog};
use ankh_vmm::console::CapturedConsole;
use ankh_vmm::domain::debug::decode::{self, FaultType};
use ankh_vmm::domain::debug::{DebugPlan, FaultPlan, GuestDebug, Profile};
use ankh_vmm::{Domain, DomainConfig, DomainExit, DomainFault};

/// Runs `hello` under `plan`, armed from its first instruction: its exit, its console
/// and the shared debug state.
fn hello_under(plan: DebugPlan) -> (DomainExit, Vec<String>, Arc<GuestDebug>) {
    let host = kvm();
    let debug = GuestDebug::new(plan);
    let config = DomainConfig {
        debug: Some(Arc::clone(&debug)),
        ..short_watchdog("probe")
    }
    // Guest debugging works for kernel-mode guests only on these hosts (see
    // docs/campaigns.md).
    .in_mode(ankh_vmm::GuestMode::Kernel);
    let console = CapturedConsole::default();
    let mut domain = Domain::create(&host, &config, &image("hello"), Box::new(console.clone()))
        .expect("creating the domain");
    // What the VMM does at a server's first message: it ends the boot, and arms.
    domain.set_request_budget(None);
    let exit = domain.run().expect("running the domain");
    (exit, console.lines(), debug)
}

fn profile_of_hello() -> Profile {
    let (exit, lines, debug) = hello_under(DebugPlan::Profile {
        max_steps: 10_000_000,
    });
    assert_eq!(exit, DomainExit::Exited { code: 0 }, "{lines:?}");
    assert_eq!(
        lines,
        ["hello from probe"],
        "single-stepping changes nothing"
    );
    debug.profile()
}

/// Sites of the profile where `fault` applies, executed at least `min` times, in
/// address order.
fn sites(profile: &Profile, fault: FaultType, min: u64) -> Vec<(u64, u64)> {
    let mut sites: Vec<(u64, u64)> = profile
        .sites
        .iter()
        .filter(|(_, site)| site.count >= min)
        .filter(|(&address, site)| {
            decode::decode(address, &site.bytes).is_some_and(|i| decode::applies(fault, &i))
        })
        .map(|(&address, site)| (address, site.count))
        .collect();
    sites.sort_unstable();
    sites
}

fn inject(address: u64, hit: u64, fault: FaultType) -> DebugPlan {
    DebugPlan::Inject(FaultPlan {
        address,
        hit,
        fault,
        seed: 7,
    })
}

#[test]
fn a_single_step_profile_counts_every_executed_instruction() {
    let profile = profile_of_hello();
    assert!(!profile.truncated);
    let counted: u64 = profile.sites.values().map(|s| s.count).sum();
    assert_eq!(counted, profile.steps);
    assert!(profile.sites.len() > 20, "{} sites", profile.sites.len());
    assert!(
        profile.sites.values().any(|s| s.count > 1),
        "no loop ran twice"
    );
}

#[test]
fn fail_stop_fires_at_the_kth_execution_and_not_before() {
    let profile = profile_of_hello();
    let &(address, count) = sites(&profile, FaultType::FailStop, 3)
        .first()
        .expect("a loop");
    let (exit, _, debug) = hello_under(inject(address, 3, FaultType::FailStop));
    assert_eq!(
        exit,
        DomainExit::Faulted(DomainFault::Injected("fail-stop"))
    );
    let record = debug.record();
    assert!(record.armed && count >= 3);
    assert_eq!(record.hits, 3);
    assert!(record.fired.expect("fired").starts_with("fail-stop at `"));
}

#[test]
fn a_fault_past_the_sites_count_is_not_activated() {
    // A site run once, asked for its second run: the breakpoint must be stepped over
    // (RFLAGS.RF), never counted twice for one execution.
    let profile = profile_of_hello();
    let &(address, _) = sites(&profile, FaultType::FailStop, 1)
        .iter()
        .find(|(_, count)| *count == 1)
        .expect("a site run once");
    let (exit, lines, debug) = hello_under(inject(address, 2, FaultType::FailStop));
    assert_eq!(exit, DomainExit::Exited { code: 0 });
    assert_eq!(lines, ["hello from probe"]);
    let record = debug.record();
    assert_eq!((record.hits, record.fired), (1, None));
}

#[test]
fn stuck_at_loop_hangs_the_domain_until_the_watchdog() {
    let profile = profile_of_hello();
    let &(address, _) = sites(&profile, FaultType::StuckAtLoop, 1)
        .first()
        .expect("a site");
    let (exit, _, debug) = hello_under(inject(address, 1, FaultType::StuckAtLoop));
    assert!(
        matches!(
            exit,
            DomainExit::Faulted(DomainFault::WatchdogTimeout { .. })
        ),
        "{exit:?}"
    );
    assert!(debug.record().fired.is_some());
}

#[test]
fn data_faults_change_what_they_say_and_the_domain_runs_on() {
    let profile = profile_of_hello();
    for fault in [
        FaultType::FlipBranch,
        FaultType::NoLoad,
        FaultType::NoStore,
        FaultType::RndLoad,
        FaultType::CorruptPointer,
        FaultType::CorruptIndex,
        FaultType::CorruptInteger,
    ] {
        let Some(&(address, _)) = sites(&profile, fault, 1).first() else {
            continue;
        };
        let (exit, lines, debug) = hello_under(inject(address, 1, fault));
        let record = debug.record();
        let fired = record
            .fired
            .unwrap_or_else(|| panic!("{fault} did not fire"));
        let expected = match fault {
            FaultType::FlipBranch => " sent to 0x",
            FaultType::NoLoad | FaultType::NoStore => "` skipped",
            FaultType::RndLoad => " gets 0x",
            _ => " -> 0x",
        };
        assert!(
            fired.contains(expected),
            "{fault}: {fired}; {exit:?} {lines:?}"
        );
    }
}

