//! The ready-made system descriptions in `systems/` stay valid and run.

use std::path::Path;

use ankh_domains::SystemDescription;
use ankh_vmm::system::DomainEnd;
use ankh_vmm::DomainExit;

fn builtin(name: &str) -> bool {
    ankh_images::find(name).is_some()
}

#[test]
fn every_ready_made_system_is_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systems");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            SystemDescription::from_path(&path, &builtin)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen += 1;
        }
    }
    assert!(seen >= 1, "no systems in {}", dir.display());
}

#[test]
fn the_ipc_demo_runs_to_completion() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../systems/ipc-demo.toml");
    let description = SystemDescription::from_path(&dir, &builtin).unwrap();
    let ran = ankh_tests::run_system(1, None, description.domains);
    for client in ["ping", "bulk", "deferred-wait", "deferred-release"] {
        assert_eq!(
            ran.end(client),
            &DomainEnd::Stopped(DomainExit::Exited { code: 0 }),
            "{client}"
        );
    }
}
