//! The process manager's image: `ankh_pm::ProcessManager` served by `ankh_serve`.
//! init's pid comes from `ankh_os::conventions::init_pid` (PM's id + 1).
#![no_std]
#![no_main]

use ankh_guest_rt::BootInfo;
use ankh_os::conventions::init_pid;
use ankh_pm::ProcessManager;

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    let Some(init) = init_pid(boot) else {
        panic!("pm: cannot tell init's pid (see ankh_os::conventions)");
    };
    ankh_serve::run(boot, ProcessManager::new(init))
}
