//! Prints `hello-os: pid <n>` (its pid from PM) and returns 0; 1 when PM cannot say.
#![no_std]
#![no_main]

use ankh_apps::out::{Console, Text};
use ankh_guest_rt::BootInfo;
use ankh_ulib::System;

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    let mut os = System::init(boot);
    match os.getpid() {
        Ok(pid) => {
            Text::new()
                .str("hello-os: pid ")
                .dec(pid.into())
                .send(&mut Console);
            0
        }
        Err(errno) => {
            Text::new()
                .str("hello-os: getpid failed errno ")
                .int(errno.into())
                .send(&mut Console);
            1
        }
    }
}
