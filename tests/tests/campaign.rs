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

mod os {
    //! Experiments of a campaign on the real OS (the suite), with faults crafted from a
    //! profile of MM (fast in kernel mode, where guest debugging works here).

    use ankh_tests::kvm;
    use ankh_vmm::campaign::plan::{self, CampaignProfile, Experiment, Fault, PlanSpec};
    use ankh_vmm::campaign::run::{execute, profile, Outcome};
    use ankh_vmm::domain::debug::decode::FaultType;
    use ankh_vmm::domain::debug::FaultPlan;

    fn mm_profile() -> CampaignProfile {
        profile(&kvm(), &["mm".to_owned()], 5_000_000).expect("the profile run passes")
    }

    /// A fail-stop at the most executed instruction of MM, at its 10th execution after
    /// MM's first message: mid-request, inside the window.
    fn fail_stop_in_mm(
        profile: &CampaignProfile,
        policy: &str,
        address: Option<u64>,
    ) -> Experiment {
        let hottest = profile.servers["mm"]
            .iter()
            .max_by_key(|s| s.count)
            .expect("MM executed something");
        assert!(hottest.count >= 10);
        Experiment {
            id: format!("{policy}-0"),
            policy: policy.to_owned(),
            fault: Fault {
                index: 0,
                server: "mm".to_owned(),
                instruction: String::new(),
                plan: FaultPlan {
                    address: address.unwrap_or(hottest.address),
                    hit: 10,
                    fault: FaultType::FailStop,
                    seed: 1,
                },
            },
        }
    }

    #[test]
    fn outcomes_of_crafted_faults_follow_the_policy() {
        let profile = mm_profile();
        let host = kvm();

        // Enhanced: MM is rolled back inside its window; the suite finishes.
        let enhanced = execute(&host, &fail_stop_in_mm(&profile, "enhanced", None));
        assert!(enhanced.activated && enhanced.hits == 10, "{enhanced:?}");
        assert!(
            matches!(enhanced.outcome, Outcome::Pass | Outcome::Fail),
            "{enhanced:?}"
        );
        let recovery = enhanced.recoveries.first().expect("a recovery");
        assert_eq!(
            (recovery.domain.as_str(), recovery.fault.as_str()),
            ("mm", "injected")
        );
        assert!(enhanced
            .window_at_detection
            .as_deref()
            .is_some_and(|w| w.starts_with("open")));

        // None: the same fault halts the system.
        let none = execute(&host, &fail_stop_in_mm(&profile, "none", None));
        assert!(none.activated);
        assert_eq!(none.outcome, Outcome::Crash, "{none:?}");
        assert!(
            none.detail.as_deref().is_some_and(|d| d.contains("halted")),
            "{none:?}"
        );

        // Stuck-at-loop: MM spins without exits; the vCPU watchdog stops it and it is
        // rolled back.
        let mut stuck = fail_stop_in_mm(&profile, "enhanced", None);
        stuck.fault.plan.fault = FaultType::StuckAtLoop;
        let stuck = execute(&host, &stuck);
        assert!(stuck.activated, "{stuck:?}");
        let recovery = stuck.recoveries.first().expect("a recovery");
        assert_eq!(
            (recovery.domain.as_str(), recovery.fault.as_str()),
            ("mm", "watchdog-timeout")
        );
        assert!(
            matches!(stuck.outcome, Outcome::Pass | Outcome::Fail),
            "{stuck:?}"
        );

        // A site MM never executes: not activated, and the suite passes.
        let unreached = execute(&host, &fail_stop_in_mm(&profile, "none", Some(0x10)));
        assert!(!unreached.activated && unreached.hits == 0, "{unreached:?}");
        assert_eq!(unreached.outcome, Outcome::Pass);
    }

    #[test]
    fn a_planned_fault_replays_at_the_same_site_and_hit() {
        let profile = mm_profile();
        let spec = PlanSpec {
            faults: 4,
            seed: 5,
            types: vec![FaultType::FailStop],
            servers: vec!["mm".to_owned()],
            policies: vec!["enhanced".to_owned()],
            max_hit: 50,
        };
        let experiments = plan::experiments(&spec, &profile);
        assert_eq!(experiments, plan::experiments(&spec, &profile));
        let first = &experiments[0];
        let host = kvm();
        let (a, b) = (execute(&host, first), execute(&host, first));
        assert_eq!((a.activated, a.hits), (b.activated, b.hits));
        assert_eq!(a.fired, b.fired);
    }
}
