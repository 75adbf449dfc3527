//! Running cargo on the guest workspace from inside another cargo invocation.
//!
//! Shared by `build.rs` (which builds the images) and `tests/guest_host_tests.rs` (which
//! runs the guest runtime's host unit tests).

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::Command;

/// Variables, set by the outer cargo or the user, that would change or break the guest
/// build: flags, wrappers (clippy sets `RUSTC_WORKSPACE_WRAPPER`), target and target
/// directory, profile and incremental settings.
const CLEARED: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_INCREMENTAL",
];

/// Prefixes of further such variables: `build.*` and `target.*` configuration (which
/// includes `CARGO_TARGET_DIR`), `profile.*` overrides, the outer build script's own
/// features and cfgs, and cargo-internal variables such as those of `cargo fix`.
const CLEARED_PREFIXES: &[&str] = &[
    "CARGO_BUILD_",
    "CARGO_TARGET_",
    "CARGO_PROFILE_",
    "CARGO_FEATURE_",
    "CARGO_CFG_",
    "__CARGO",
];

/// Whether the guest cargo must not inherit the variable `name`.
fn is_cleared(name: &OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    CLEARED.contains(&name)
        || CLEARED_PREFIXES
            .iter()
            .any(|prefix| name.starts_with(prefix))
}

/// A cargo command for the guest workspace at `guest_dir`: the same cargo as the outer
/// build (`$CARGO`, else `cargo` on the path), run from `guest_dir` so that its
/// `.cargo/config.toml` applies, with the variables above removed.
pub fn guest_cargo(guest_dir: &Path) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut command = Command::new(cargo);
    command.current_dir(guest_dir);
    for (name, _) in std::env::vars_os() {
        if is_cleared(&name) {
            command.env_remove(&name);
        }
    }
    command
}
