//! `hog KIND`: an unprivileged program that tries to take more than its share of the
//! VMM (CPU, exits, queues, VMs), for the containment tests. It runs beside
//! another job of init (list it after that job) for as long as that job lives: it
//! watches the sibling with the lowest pid it saw at start (init starts its jobs in
//! order, so that is the first job), and stops when it is gone.
//!
//! Kinds:
//! - `spin`: computes without a single exit, in bursts of about 30 ms (three scheduler
//!   quanta; the VMM must preempt it by a kick), checking on its sibling in between;
//! - `exits`: exits to the VMM in a loop (`Nop` hypercalls) and never blocks;
//! - `calls`: calls PM in a loop (`getpid`), so that PM and it could ping-pong;
//! - `replies`: sends VFS 1 MiB reads without ever taking the replies (the VMM stops
//!   it when it has too many requests in flight);
//! - `inbox`: sends DS a burst of requests without waiting, then exits;
//! - `off-turn` (a process domain only): reports a wait for a message nobody sends,
//!   as its runtime would, but computes on instead of waiting for its turn to come
//!   back (the VMM must notice the CPU time it takes outside its turns and stop it);
//! - `spawn-kill`: spawns `/bin/child-exit3`, kills it and waits for it, in a loop
//!   (each round once woke two domains in one step, which gave the loop a fresh turn,
//!   so the loop and PM kept the thread for as long as it ran); gives up after
//!   [`SPAWN_KILLS`] rounds, failing, if its sibling is still running then;
//! - `spawns N`: spawns `/bin/child-exit3` and waits for it, N times (the soak of the
//!   process lifecycle); prints `hog: N spawns, F failed`.
//!
//! Prints `hog: KIND done` when it ends by itself (the VMM may stop it before).
#![no_std]
#![no_main]

extern crate alloc;

use ankh_apps::out::{Console, Text};
use ankh_guest_rt::{hypercall, BootInfo};
use ankh_proto::opcode::{DS_LIST, VFS_READ};
use ankh_proto::pm::STATE_RUNNING;
use ankh_proto::vfs::Io;
use ankh_ulib::vfs::O_RDONLY;
use ankh_ulib::{Pid, Server, System};
use zerocopy::IntoBytes;

ankh_guest_rt::entry!(main);

/// Rounds of `spawn-kill` before it gives up (seconds of a starved thread; the
/// suite beside a fair one ends after a few hundred).
const SPAWN_KILLS: u32 = 20_000;

/// Requests the `replies` and `inbox` attacks send (far over any fair bound).
const FLOOD: u32 = 10_000;

fn main(boot: &BootInfo) -> u32 {
    let mut os = System::init(boot);
    let args = os.args().unwrap_or_default();
    let kind = args.get(1).map_or("", |kind| kind.as_str());
    let watched = first_sibling(&mut os);
    match kind {
        "spin" => {
            while alive(&mut os, watched) {
                spin_burst();
            }
        }
        "exits" => {
            while alive(&mut os, watched) {
                for _ in 0..10_000 {
                    hypercall::nop();
                }
            }
        }
        "calls" => {
            while alive(&mut os, watched) {
                for _ in 0..1_000 {
                    let _ = os.getpid();
                }
            }
        }
        "off-turn" => off_turn(boot),
        "replies" => flood_replies(&mut os, boot),
        "inbox" => flood_inbox(&mut os, boot),
        "spawns" => return spawns(&mut os, args.get(2).map_or("", |n| n.as_str())),
        "spawn-kill" => {
            if !spawn_kill(&mut os, watched) {
                Text::new()
                    .str("hog: spawn-kill gave up, its sibling still runs")
                    .send(&mut Console);
                return 1;
            }
        }
        _ => {
            Text::new()
                .str("hog: unknown kind ")
                .str(kind)
                .send(&mut Console);
            return 2;
        }
    }
    Text::new()
        .str("hog: ")
        .str(kind)
        .str(" done")
        .send(&mut Console);
    0
}

/// The pid of the sibling with the lowest pid, if any.
fn first_sibling(os: &mut System) -> Option<Pid> {
    let me = os.getpid().ok()?;
    let parent = os.getppid().ok()?;
    let procs = os.ps().ok()?;
    procs
        .iter()
        .filter(|p| p.ppid == parent && p.pid != me)
        .map(|p| p.pid)
        .min()
}

/// Whether `watched` still runs (false when there is none to watch).
fn alive(os: &mut System, watched: Option<Pid>) -> bool {
    let Some(watched) = watched else {
        return false;
    };
    os.ps()
        .map(|procs| {
            procs
                .iter()
                .any(|p| p.pid == watched && p.state == STATE_RUNNING)
        })
        .unwrap_or(false)
}

/// About 30 ms of computation without an exit (75 million cycles): three quanta, so
/// only a kick ends its turn, and far below the watchdog timeout even on a loaded host.
fn spin_burst() {
    let start = rdtsc();
    let mut x = 1u64;
    while rdtsc().wrapping_sub(start) < 75_000_000 {
        x = core::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
    }
}

fn rdtsc() -> u64 {
    // SAFETY: rdtsc reads the time-stamp counter; it touches no memory.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// 1 MiB reads of a file, never waiting for a reply.
fn flood_replies(os: &mut System, boot: &BootInfo) {
    let Ok(fd) = os.open("/bin/hello-os", O_RDONLY) else {
        return;
    };
    let vfs = ankh_ulib::Servers::from_boot(boot).get(Server::Vfs);
    let Some(vfs) = vfs else {
        return;
    };
    let read = Io {
        fd,
        len: 1 << 20,
        offset: 0,
    };
    for _ in 0..FLOOD {
        os.channel().send(vfs, VFS_READ, read.as_bytes(), &[]);
    }
}

/// A burst of DS requests without waiting for their replies.
fn flood_inbox(os: &mut System, boot: &BootInfo) {
    let Some(ds) = ankh_ulib::Servers::from_boot(boot).get(Server::Ds) else {
        return;
    };
    for _ in 0..FLOOD {
        os.channel().send(ds, DS_LIST, &[], b"\0");
    }
}

/// Spawns `/bin/child-exit3` and waits for it, `count` times.
fn spawns(os: &mut System, count: &str) -> u32 {
    let count: u32 = count.parse().unwrap_or(0);
    let mut failed = 0u64;
    for _ in 0..count {
        let ok = os
            .spawn("/bin/child-exit3", &["child-exit3"], false)
            .and_then(|pid| os.wait(pid))
            .is_ok();
        failed += u64::from(!ok);
    }
    Text::new()
        .str("hog: ")
        .dec(count.into())
        .str(" spawns, ")
        .dec(failed)
        .str(" failed")
        .send(&mut Console);
    0
}

/// Hands its turn to the VMM with a wait for any message (nobody sends this program
/// one, so the VMM takes it for blocked for good) and then computes for ever instead
/// of waiting on the turn. Returns only in a VM, which has no turn to cheat.
fn off_turn(boot: &BootInfo) {
    use core::sync::atomic::{AtomicU32, Ordering};
    use virtio_seep::abi::hypercall::Hypercall;
    use virtio_seep::abi::process::{exit_kind, ControlPage, ExitRecord, TURN_VMM};
    use virtio_seep::queue::IpcOp;

    let control = boot.process_control as *mut ControlPage;
    if control.is_null() {
        return;
    }
    let value = IpcOp::Receive.encode(0);
    // SAFETY: the control page is this domain's, mapped for its life; the turn is the
    // guest's, so nothing else writes the page now.
    unsafe {
        (&raw mut (*control).exit).write_volatile(ExitRecord {
            kind: exit_kind::PORT_WRITE,
            port: u32::from(Hypercall::Ipc.port()),
            size: 4,
            value,
            ..ExitRecord::default()
        });
        (&raw mut (*control).regs.rax).write_volatile(u64::from(value));
        (&raw mut (*control).regs.rdx).write_volatile(u64::from(Hypercall::Ipc.port()));
        let turn = &*(&raw const (*control).turn).cast::<AtomicU32>();
        turn.store(TURN_VMM, Ordering::SeqCst);
        // futex(turn, FUTEX_WAKE, 1): the VMM may be asleep on the word.
        core::arch::asm!(
            "syscall",
            inlateout("rax") 202u64 => _,
            in("rdi") turn.as_ptr(),
            in("rsi") 1u64,
            in("rdx") 1u64,
            out("rcx") _,
            out("r11") _,
            options(nostack),
        );
    }
    loop {
        spin_burst();
    }
}

/// `spawn-kill`: true when the sibling ended before [`SPAWN_KILLS`] rounds.
fn spawn_kill(os: &mut System, watched: Option<Pid>) -> bool {
    for round in 0..SPAWN_KILLS {
        if round % 16 == 0 && !alive(os, watched) {
            return true;
        }
        if let Ok(pid) = os.spawn("/bin/child-exit3", &["child-exit3"], false) {
            let _ = os.kill(pid);
            let _ = os.wait(pid);
        }
    }
    !alive(os, watched)
}
