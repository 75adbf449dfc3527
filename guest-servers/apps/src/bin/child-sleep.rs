//! Blocks forever in a read of a pipe it holds both ends of, until killed. Returns 1
//! if the read ever returns.
#![no_std]
#![no_main]

use ankh_guest_rt::BootInfo;

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    let mut os = ankh_apps::restart::watched_system(boot);
    if let Ok((read, _write)) = os.pipe() {
        let _ = os.read(read, &mut [0u8; 1]);
    }
    1
}
