//! The OS on real VMs: PM, VFS, DS and MM servers, init, and the programs it runs.

use ankh_tests::{assert_serving, on_both_substrates, run_os, suite_result, Substrate};
use ankh_vmm::system::DomainEnd;
use ankh_vmm::DomainExit;

on_both_substrates!(
    a_faulting_app_is_reaped_with_its_fault,
    a_flooding_app_does_not_disturb_the_suite,
    init_passes_a_jobs_arguments_to_its_program,
);

on_both_substrates!(the_conformance_suite_passes);

fn the_conformance_suite_passes(_: Substrate) {
    let ran = run_os(&["suite"]);
    let suite: Vec<&str> = ran.lines_of("suite");
    let (passed, failed) = suite_result(&suite);
    assert_eq!(failed, 0, "suite output: {suite:?}");
    assert!(passed >= 60, "only {passed} checks");
    ran.assert_exited_cleanly("init");
}

fn a_faulting_app_is_reaped_with_its_fault(_: Substrate) {
    let ran = run_os(&["child-ud2"]);
    let fault = ran.fault("child-ud2");
    assert_eq!(fault.kind(), "cpu-exception", "{fault}");
    let init = ran.lines_of("init");
    assert!(
        init.iter()
            .any(|l| l.contains("/bin/child-ud2") && l.contains("fault")),
        "init reports the fault: {init:?}"
    );
    assert!(
        matches!(ran.end("init"), DomainEnd::Stopped(DomainExit::Exited { code }) if *code != 0)
    );
}

fn a_flooding_app_does_not_disturb_the_suite(_: Substrate) {
    let ran = run_os(&["flood", "suite"]);
    assert_eq!(ran.lines_of("flood").last(), Some(&"flood: done"));
    let (passed, failed) = suite_result(&ran.lines_of("suite"));
    assert_eq!(failed, 0, "{:?}", ran.lines_of("suite"));
    assert!(passed >= 60);
    assert_serving(&ran, &["pm", "vfs", "ds", "mm"]);
}

fn init_passes_a_jobs_arguments_to_its_program(_: Substrate) {
    // `ubench` runs the workloads its arguments name, in their order.
    let ran = run_os(&["ubench ds-lookup pipe ds-lookup"]);
    let lines = ran.lines_of("ubench");
    let names: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("ubench: "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["ds-lookup", "pipe", "ds-lookup"], "{lines:?}");
    assert!(
        matches!(
            ran.end("ubench"),
            DomainEnd::Stopped(DomainExit::Exited { code: 0 })
        ),
        "{:?}",
        ran.end("ubench")
    );
}
