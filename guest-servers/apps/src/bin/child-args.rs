//! Exits with the number of its arguments when they are exactly
//! `ankh_apps::paths::CHILD_ARGS_ARGV`, and with 99 otherwise (so a parent can check
//! that argv arrived whole).
#![no_std]
#![no_main]

use ankh_apps::paths::CHILD_ARGS_ARGV;
use ankh_guest_rt::BootInfo;

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    let mut os = ankh_apps::restart::watched_system(boot);
    match os.args() {
        Ok(args)
            if args
                .iter()
                .map(|a| a.as_str())
                .eq(CHILD_ARGS_ARGV.iter().copied()) =>
        {
            u32::try_from(args.len()).unwrap_or(99)
        }
        _ => 99,
    }
}
