//! Links the server images as freestanding executables with the runtime's linker script.

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let script = manifest_dir.join("../rt/guest.ld");
    let script = script
        .canonicalize()
        .unwrap_or_else(|err| panic!("linker script {}: {err}", script.display()));
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-changed=build.rs");
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
