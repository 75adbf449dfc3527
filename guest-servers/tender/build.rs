//! Links the tender as a static Linux executable at `abi::process::TENDER_BASE`, far
//! above guest RAM, with its own linker script.

fn main() {
    let manifest_dir =
        std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let script = manifest_dir.join("tender.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-changed=build.rs");
    for arg in [
        "-nostartfiles".to_owned(),
        "-nostdlib".to_owned(),
        "-static".to_owned(),
        format!("-T{}", script.display()),
        "-Wl,--gc-sections".to_owned(),
        "-Wl,--build-id=none".to_owned(),
        "-Wl,-z,max-page-size=4096".to_owned(),
        "-Wl,-z,noexecstack".to_owned(),
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
}
