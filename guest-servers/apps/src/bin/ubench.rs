//! Unixbench-style workloads, each delimited by a pair of `Nop` hypercalls the host
//! timestamps (see `ankh_apps::bench`).
#![no_std]
#![no_main]

use ankh_apps::bench::{Bench, Budget};
use ankh_apps::out::Console;
use ankh_guest_rt::{hypercall, BootInfo};
use ankh_ulib::System;

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    let mut os = System::init(boot);
    let mut bench = Bench {
        os: &mut os,
        mark: &mut hypercall::nop,
        out: &mut Console,
        processes: true,
    };
    bench.run(&Budget::DEFAULT)
}
