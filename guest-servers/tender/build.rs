//! Links the tender as a static Linux executable at `abi::process::TENDER_BASE`, far
//! above guest RAM, with its own linker script (and the guests' other link arguments).

include!("../rt/link_args.rs");

fn main() {
    link_freestanding("tender.ld");
    println!("cargo:rustc-link-arg-bins=-Wl,-z,noexecstack");
}
