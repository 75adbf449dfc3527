//! Runs the guest workspace's host unit tests (the runtime's formatting, line
//! buffering) as part of this crate's tests.
//!
//! They cannot run under the guests' own flags: with SSE disabled, dependencies that
//! return floats do not compile without LTO. `RUSTFLAGS=""` overrides the flags of
//! `guest-servers/.cargo/config.toml`; by hand: `cd guest-servers && RUSTFLAGS= cargo test`.

#[path = "../build/nested_cargo.rs"]
mod nested_cargo;

use std::path::Path;

#[test]
fn guest_runtime_host_tests_pass() {
    let guest_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-servers");
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("guest-host-tests");
    let output = nested_cargo::guest_cargo(&guest_dir)
        .env("RUSTFLAGS", "")
        .args(["test", "--quiet", "--target-dir"])
        .arg(&target_dir)
        .output()
        .expect("cannot run cargo");
    assert!(
        output.status.success(),
        "guest host tests failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
