//! Unixbench-style workloads, each delimited by a pair of `Nop` hypercalls the host
//! timestamps (see `ankh_apps::bench`). Arguments name the workloads to run, in order
//! (e.g. `ubench syscall pipe`, or `ubench pipe pipe` for a warm-up run first); without
//! any, all of them run.
#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

use ankh_apps::bench::{Bench, Budget};
use ankh_apps::out::{Console, Text};
use ankh_apps::restart::retry_restarted;
use ankh_guest_rt::{hypercall, BootInfo};
use ankh_ulib::System;

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    let mut os = System::init(boot);
    // Without its arguments ubench would run other workloads than it was asked to.
    let args = match retry_restarted(|| os.args()) {
        Ok(args) => args,
        Err(errno) => {
            Text::new()
                .str("ubench: cannot read its arguments errno ")
                .int(errno.into())
                .send(&mut Console);
            return 1;
        }
    };
    // The first argument is the program's own path.
    let only: Vec<String> = args.into_iter().skip(1).collect();
    let mut bench = Bench {
        os: &mut os,
        mark: &mut hypercall::nop,
        out: &mut Console,
        processes: true,
    };
    bench.run(&Budget::DEFAULT, &only)
}
