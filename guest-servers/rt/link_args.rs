// Shared by the build scripts of every crate with guest binaries (`include!`d), so
// every image is linked the same way: freestanding, with the runtime's linker script
// (and the tender's, with its own script).

/// Passes the guest link arguments to the binaries of the crate being built.
// The tender's build script includes this file for `link_freestanding` only.
#[allow(dead_code)]
fn link_guest_binaries() {
    link_freestanding("../rt/guest.ld");
}

/// Links the binaries of the crate being built as freestanding static executables
/// with the linker script at `script` (relative to the crate's manifest).
fn link_freestanding(script: &str) {
    let manifest_dir =
        std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let script = manifest_dir.join(script);
    let script = script
        .canonicalize()
        .unwrap_or_else(|err| panic!("linker script {}: {err}", script.display()));
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../rt/link_args.rs");
    let args = [
        "-nostartfiles".to_owned(),
        "-nostdlib".to_owned(),
        "-static".to_owned(),
        format!("-T{}", script.display()),
        "-Wl,--gc-sections".to_owned(),
        "-Wl,--build-id=none".to_owned(),
        "-Wl,-z,max-page-size=4096".to_owned(),
    ];
    for arg in args {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
}
