//! Fault-injection campaigns: hardware-breakpoint injection into a domain (each fault
//! type does what it says, on both substrates), and `ankh campaign`'s plans and
//! outcomes on the real OS.

use std::sync::Arc;

use ankh_images::expect::{DEBUG_PROBE_PREFIX, DEBUG_PROBE_SUM};
use ankh_tests::{image, kvm, on_both_substrates, short_watchdog, Substrate};
use ankh_vmm::console::CapturedConsole;
use ankh_vmm::domain::debug::decode::{self, FaultType};
use ankh_vmm::domain::debug::{DebugPlan, FaultPlan, GuestDebug, Profile};
use ankh_vmm::{Domain, DomainConfig, DomainExit, DomainFault};

/// The one line `debug-probe` prints.
fn probe_line() -> String {
    format!("{DEBUG_PROBE_PREFIX}{DEBUG_PROBE_SUM}")
}

/// Runs `debug-probe` on `substrate` under `plan`, armed before it runs (from its
/// first instruction in a VM, its first exit in a process: before its loop either
/// way): its exit, its console and the shared debug state.
fn probe_under(
    substrate: Substrate,
    plan: DebugPlan,
) -> (DomainExit, Vec<String>, Arc<GuestDebug>) {
    let host = kvm();
    let debug = GuestDebug::new(plan);
    let mut config = DomainConfig {
        debug: Some(Arc::clone(&debug)),
        substrate,
        ..short_watchdog("probe")
    };
    if substrate == Substrate::Kvm {
        // Guest debugging of a VM works in kernel mode only on these hosts (see
        // docs/campaigns.md); a process is debugged in user mode.
        config = config.in_mode(ankh_vmm::GuestMode::Kernel);
    }
    let console = CapturedConsole::default();
    let mut domain = Domain::create(
        &host,
        &config,
        &image("debug-probe"),
        Box::new(console.clone()),
    )
    .expect("creating the domain");
    // What the VMM does at a server's first message: it ends the boot, and arms.
    domain.set_request_budget(None);
    let exit = domain.run().expect("running the domain");
    (exit, console.lines(), debug)
}

fn profile_of_probe(substrate: Substrate) -> Profile {
    let (exit, lines, debug) = probe_under(
        substrate,
        DebugPlan::Profile {
            max_steps: 10_000_000,
        },
    );
    assert_eq!(exit, DomainExit::Exited { code: 0 }, "{lines:?}");
    assert_eq!(lines, [probe_line()], "single-stepping changes nothing");
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

fn a_single_step_profile_counts_every_executed_instruction(substrate: Substrate) {
    let profile = profile_of_probe(substrate);
    assert!(!profile.truncated);
    let counted: u64 = profile.sites.values().map(|s| s.count).sum();
    assert_eq!(counted, profile.steps);
    assert!(profile.sites.len() > 20, "{} sites", profile.sites.len());
    assert!(
        profile.sites.values().any(|s| s.count > 1),
        "no loop ran twice"
    );
}

fn fail_stop_fires_at_the_kth_execution_and_not_before(substrate: Substrate) {
    let profile = profile_of_probe(substrate);
    let &(address, count) = sites(&profile, FaultType::FailStop, 3)
        .first()
        .expect("a loop");
    let (exit, _, debug) = probe_under(substrate, inject(address, 3, FaultType::FailStop));
    assert_eq!(
        exit,
        DomainExit::Faulted(DomainFault::Injected("fail-stop"))
    );
    let record = debug.record();
    assert!(record.armed && count >= 3);
    assert_eq!(record.hits, 3);
    assert!(record.fired.expect("fired").starts_with("fail-stop at `"));
}

fn a_fault_past_the_sites_count_is_not_activated(substrate: Substrate) {
    // A site of the program run once, asked for its second run: the breakpoint must be
    // stepped over (RFLAGS.RF), never counted twice for one execution. (In a process
    // the runtime's handover ends with two instructions that run before the trap flag
    // loaded with them takes effect, so the call that armed the profile is not counted
    // there: sites of the program's own code only.)
    let profile = profile_of_probe(substrate);
    let main = closed_window::function("debug-probe", "__ankh_guest_main");
    let &(address, _) = sites(&profile, FaultType::FailStop, 1)
        .iter()
        .find(|(address, count)| *count == 1 && main.contains(address))
        .expect("a site run once");
    let (exit, lines, debug) = probe_under(substrate, inject(address, 2, FaultType::FailStop));
    assert_eq!(exit, DomainExit::Exited { code: 0 });
    assert_eq!(lines, [probe_line()]);
    let record = debug.record();
    assert_eq!((record.hits, record.fired), (1, None));
}

fn stuck_at_loop_hangs_the_domain_until_the_watchdog(substrate: Substrate) {
    let profile = profile_of_probe(substrate);
    let &(address, _) = sites(&profile, FaultType::StuckAtLoop, 1)
        .first()
        .expect("a site");
    let (exit, _, debug) = probe_under(substrate, inject(address, 1, FaultType::StuckAtLoop));
    assert!(
        matches!(
            exit,
            DomainExit::Faulted(DomainFault::WatchdogTimeout { .. })
        ),
        "{exit:?}"
    );
    assert!(debug.record().fired.is_some());
}

fn data_faults_change_what_they_say_and_the_domain_runs_on(substrate: Substrate) {
    let profile = profile_of_probe(substrate);
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
        let (exit, lines, debug) = probe_under(substrate, inject(address, 1, fault));
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

on_both_substrates!(
    a_single_step_profile_counts_every_executed_instruction,
    fail_stop_fires_at_the_kth_execution_and_not_before,
    a_fault_past_the_sites_count_is_not_activated,
    stuck_at_loop_hangs_the_domain_until_the_watchdog,
    data_faults_change_what_they_say_and_the_domain_runs_on,
);

mod os {
    //! Experiments of a campaign on the real OS (the suite), with faults crafted from a
    //! profile of MM (fast in kernel mode, where guest debugging works here).

    use ankh_tests::kvm;
    use ankh_vmm::campaign::plan::{self, CampaignProfile, Experiment, Fault, PlanSpec};
    use ankh_vmm::campaign::run::{execute, profile, Outcome};
    use ankh_vmm::domain::debug::decode::FaultType;
    use ankh_vmm::domain::debug::FaultPlan;

    fn mm_profile() -> CampaignProfile {
        profile(&kvm(), Default::default(), &["mm".to_owned()], 5_000_000)
            .expect("the profile run passes")
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
            substrate: Default::default(),
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
            substrate: Default::default(),
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

mod closed_window {
    //! The outcome MM and blk cannot produce, with a server that can: a fail-stop after a
    //! state-exposing message. MM and blk send nothing but the reply that ends each
    //! request, in the same exit as their wait (`reply_recv`), so no instruction of theirs
    //! ever runs with a closed window. `echo` does, under pessimistic: asked to release a
    //! parked request (`TEST_RELEASE`), it answers that request with a flush (a reply to
    //! another client) and runs on to answer the releaser. The VMM holds that reply until
    //! echo answers the releaser (docs/recovery.md, "Held effects"): under enhanced it
    //! exposes nothing yet and the window stays open; under pessimistic, whose window
    //! closes at any message, it closes it. A fail-stop there, placed from a profile and
    //! fired by a hardware breakpoint as a campaign does it, and the campaign's
    //! classifier reads the run.

    use std::sync::{Arc, Mutex};

    use ankh_domains::{DomainSpec, Mode, Policy, Role, SystemDescription};
    use ankh_recovery::{Action, WindowState};
    use ankh_tests::{image, kvm, on_both_substrates, Substrate};
    use ankh_vmm::campaign::run::{classify, OsRun, Outcome};
    use ankh_vmm::console::ConsoleSink;
    use ankh_vmm::domain::debug::decode::{self, FaultType};
    use ankh_vmm::domain::debug::{DebugPlan, FaultPlan, GuestDebug, Profile};
    use ankh_vmm::system::{self, SystemOptions, SystemReport};
    use object::{Object, ObjectSymbol};
    use virtio_seep::errno::ERESTART;
    use virtio_seep::opcode::SeepClass;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<(String, String)>>>);

    impl ConsoleSink for Lines {
        fn line(&mut self, domain: &str, line: &str) {
            self.0
                .lock()
                .unwrap()
                .push((domain.to_owned(), line.to_owned()));
        }
    }

    /// echo on `substrate` under `policy`, debugged with `plan` (a VM in kernel mode:
    /// guest debugging needs it here), one client it parks and one that releases it.
    /// One thread: the clients run in that order.
    fn run(
        substrate: Substrate,
        policy: Policy,
        plan: DebugPlan,
    ) -> (SystemReport, Vec<(String, String)>, Arc<GuestDebug>) {
        let mode = match substrate {
            Substrate::Kvm => Mode::Kernel,
            Substrate::Process => Mode::User,
        };
        let description = SystemDescription::builder()
            .threads(1)
            .domains(vec![
                DomainSpec::new("echo", "echo").policy(policy).mode(mode),
                DomainSpec::new("deferred-wait", "deferred-wait")
                    .calls(["echo"])
                    .role(Role::Process),
                DomainSpec::new("deferred-release", "deferred-release")
                    .calls(["echo"])
                    .role(Role::Process),
            ])
            .build(&|name| ankh_images::find(name).is_some())
            .expect("a valid system description");
        let debug = GuestDebug::new(plan);
        let lines = Lines::default();
        let sink = lines.clone();
        let options = SystemOptions {
            guest_debug: vec![("echo".to_owned(), Arc::clone(&debug))],
            substrate,
            ..SystemOptions::new(Arc::new(move |_| {
                Box::new(sink.clone()) as Box<dyn ConsoleSink>
            }))
        };
        let report = system::run_system(&kvm(), &description, &|name| Ok(image(name)), &options)
            .expect("booting the system");
        let lines = lines.0.lock().unwrap().clone();
        (report, lines, debug)
    }

    /// The address range of the function of `image` whose demangled name is `name`.
    pub(super) fn function(image_name: &str, name: &str) -> std::ops::Range<u64> {
        let elf = ankh_images::find(image_name).expect("a built-in image").elf;
        let file = object::File::parse(elf).expect("an ELF image");
        let symbol = file
            .symbols()
            .find(|s| {
                s.name()
                    .is_ok_and(|n| format!("{:#}", rustc_demangle::demangle(n)) == name)
            })
            .unwrap_or_else(|| panic!("no function {name} in {image_name}"));
        symbol.address()..symbol.address() + symbol.size()
    }

    /// The `ret` of `Ipc::reply` (the reply to a parked request, flushed at once): it
    /// runs after the exit that sent the reply. Found in the profile, with its count.
    fn after_the_parked_reply(profile: &Profile) -> (u64, u64) {
        let reply = function("echo", "ankh_guest_rt::ipc::Ipc<T>::reply");
        let rets: Vec<(u64, u64)> = profile
            .sites
            .iter()
            .filter(|(address, _)| reply.contains(address))
            .filter(|(&address, site)| {
                decode::decode(address, &site.bytes).is_some_and(|i| i.to_string() == "ret")
            })
            .map(|(&address, site)| (address, site.count))
            .collect();
        assert_eq!(rets.len(), 1, "one ret in Ipc::reply: {rets:?}");
        rets[0]
    }

    /// The recovery from the injected fault (on a loaded host another fault, such as a
    /// watchdog timeout of a starved domain, may come first: not this test's subject).
    fn injected_recovery(report: &SystemReport) -> &ankh_recovery::RecoveryEvent {
        report
            .recoveries
            .iter()
            .find(|event| event.fault == "injected")
            .unwrap_or_else(|| panic!("no recovery from the injected fault: {report:?}"))
    }

    fn fail_stop(address: u64) -> DebugPlan {
        DebugPlan::Inject(FaultPlan {
            address,
            hit: 1,
            fault: FaultType::FailStop,
            seed: 1,
        })
    }

    on_both_substrates!(a_fail_stop_after_a_reply_to_another_client_follows_the_policy);

    fn a_fail_stop_after_a_reply_to_another_client_follows_the_policy(substrate: Substrate) {
        // The golden run, profiled: both clients are answered, the parked one once.
        let (report, lines, debug) = run(
            substrate,
            Policy::Enhanced,
            DebugPlan::Profile {
                max_steps: 1_000_000,
            },
        );
        assert_eq!(report.stop, None, "{lines:?}");
        assert!(lines.contains(&("deferred-release".into(), "deferred-release: done".into())));
        let profile = debug.profile();
        assert!(!profile.truncated);
        // OSIRIS's coverage, counted: echo's single-stepped instructions with a
        // request in hand, all inside its window (the parked reply was held).
        let echo = report.domain("echo").expect("echo ran");
        let coverage = report.coverage.get(echo.id);
        assert!(
            coverage.instructions_open > 0 && coverage.instructions_closed == 0,
            "{coverage:?}"
        );
        assert!(coverage.instructions_open + coverage.instructions_closed <= profile.steps);
        let (site, count) = after_the_parked_reply(&profile);
        assert_eq!(count, 1, "one parked request, answered once");

        {
            let policy = Policy::Pessimistic;
            let (report, lines, debug) = run(substrate, policy, fail_stop(site));
            let record = debug.record();
            assert!(record.fired.is_some() && record.hits == 1, "{record:?}");
            let run = OsRun {
                report: Ok(report.clone()),
                suite: Vec::new(),
            };
            let (outcome, detail) = classify(&run);
            assert_eq!(
                outcome,
                Outcome::Shutdown,
                "{policy:?}: {detail:?} {lines:?}"
            );
            let recovery = injected_recovery(&report);
            assert_eq!(recovery.domain_name, "echo");
            assert!(
                matches!(recovery.action, Action::Shutdown { .. }),
                "{recovery}"
            );
            assert!(
                matches!(
                    recovery.window,
                    WindowState::Closed {
                        by: SeepClass::Query,
                        ..
                    }
                ),
                "{policy:?}: {recovery}"
            );
        }

        // Under enhanced the held reply exposed nothing: the same fault is rolled back,
        // the releaser gets ERESTART, and the parked client was never answered (the
        // rollback dropped the reply; echo's restored state has it parked still).
        let (report, lines, _) = run(substrate, Policy::Enhanced, fail_stop(site));
        assert_eq!(report.stop, None, "{lines:?}");
        let recovery = injected_recovery(&report);
        assert!(recovery.window.is_open(), "{recovery}");
        assert_eq!(recovery.action, Action::Rollback { error_reply: true });
        assert!(
            !lines.iter().any(|(domain, _)| domain == "deferred-wait"),
            "{lines:?}"
        );

        // The same fault under naive (whose window never closes) is rolled back, and
        // the system runs on: the shutdown above is the policy's, not the fault's.
        let (report, lines, _) = run(substrate, Policy::Naive, fail_stop(site));
        assert_eq!(report.stop, None, "{lines:?}");
        let recovery = injected_recovery(&report);
        assert!(
            matches!(recovery.action, Action::Rollback { .. }),
            "{recovery}"
        );

        // And a fail-stop at the entry of `Ipc::reply`, before the parked reply left,
        // is inside the window under enhanced: rolled back, the releaser gets ERESTART.
        let entry = function("echo", "ankh_guest_rt::ipc::Ipc<T>::reply").start;
        assert_eq!(profile.sites.get(&entry).map(|s| s.count), Some(1));
        let (report, lines, _) = run(substrate, Policy::Enhanced, fail_stop(entry));
        assert_eq!(report.stop, None, "{lines:?}");
        let recovery = injected_recovery(&report);
        assert!(recovery.window.is_open(), "{recovery}");
        assert_eq!(recovery.action, Action::Rollback { error_reply: true });
        let released: Vec<&str> = lines
            .iter()
            .filter(|(domain, _)| domain == "deferred-release")
            .map(|(_, line)| line.as_str())
            .collect();
        assert_eq!(
            released,
            [format!("deferred-release: FAILED call 0 errno {ERESTART}")]
        );
    }
}
