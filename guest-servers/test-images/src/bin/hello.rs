//! Prints `hello from <domain name>` and exits with 0.
#![no_std]
#![no_main]

use ankh_guest_rt::console::Line;
use ankh_guest_rt::BootInfo;
use ankh_test_images::expect::HELLO_PREFIX;

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    Line::new().str(HELLO_PREFIX).str(boot.name()).send();
    0
}
