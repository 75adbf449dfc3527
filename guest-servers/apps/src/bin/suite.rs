//! The OS conformance suite (see `ankh_apps::suite`): ends with `N passed, M failed`;
//! `suite --runs N` runs it N times in a row.
#![no_std]
#![no_main]

use ankh_apps::out::Console;
use ankh_apps::restart::Watched;
use ankh_apps::suite::runs;
use ankh_guest_rt::ipc::Ipc;
use ankh_guest_rt::BootInfo;
use ankh_ulib::Os;

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    // `System::init`, with a channel that counts `ERESTART` answers.
    let mut os = Os::new(Watched::new(Ipc::init()), boot);
    runs::main(&mut os, &mut Console)
}
