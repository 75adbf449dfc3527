//! Links the images as freestanding executables with the runtime's linker script.

include!("../rt/link_args.rs");

fn main() {
    link_guest_binaries();
}
