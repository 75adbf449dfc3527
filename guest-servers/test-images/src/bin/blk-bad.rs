//! Feeds the block device a malformed request or access, chosen by the domain name
//! (`expect::BLK_BAD_CASES`), after a correct setup. Each must stop the domain with a
//! fault and leave the disk untouched; if the VMM resumes it, it exits with
//! `RESUMED_AFTER_FAULT_CODE`. Needs a disk of its own (no `blk` server involved).
#![no_std]
#![no_main]

use ankh_blk::driver::Raw;
use ankh_blk::ring::{Descriptor, StaticQueue, DESC_F_NEXT, DESC_F_WRITE};
use ankh_blk::transport::Mmio;
use ankh_blk::BlkDriver;
use ankh_guest_rt::console::Line;
use ankh_guest_rt::BootInfo;
use ankh_test_images::expect::{RESUMED_AFTER_FAULT_CODE, UNKNOWN_NAME_CODE};
use virtio_seep::abi::blk::{reg, RequestHeader, BLK_MMIO_BASE, BLK_MMIO_SIZE, T_IN, T_OUT};

ankh_guest_rt::entry!(main);

const IMAGE: &str = "blk-bad";

static QUEUE: StaticQueue = StaticQueue::new();

/// What a malformed write would put on the disk if the device took it.
static DATA: [u8; 1024] = [0xab; 1024];

/// Guest address of the PML4 (`layout::PML4_ADDR`): in the VMM's area.
const PAGE_TABLES: u64 = 0x3000;

fn main(boot: &BootInfo) -> u32 {
    let name = boot.name();
    // SAFETY: the domain has a disk, so the VMM's block device is at BLK_MMIO_BASE,
    // and this is its only driver. Without a disk the first read is a page fault,
    // which is what the test of that case expects.
    let transport = unsafe { Mmio::new(BLK_MMIO_BASE) };
    let Some(memory) = QUEUE.take() else {
        return 1;
    };
    let mut driver = match BlkDriver::init(transport, memory) {
        Ok(driver) => driver,
        Err(error) => {
            Line::new().str(IMAGE).str(": ").str(error.text()).send();
            return 1;
        }
    };
    let capacity = driver.geometry().sectors;
    let data = DATA.as_ptr() as u64;
    let ram_end = boot.memory_size;
    let mut raw = driver.raw();
    match name {
        "bad-sector" => request(&mut raw, T_OUT, capacity, &[(data, 512, 0)]),
        "bad-overflow" => request(&mut raw, T_OUT, u64::MAX, &[(data, 1024, 0)]),
        "bad-length" => request(&mut raw, T_OUT, 0, &[(data, 700, 0)]),
        "bad-address" => request(&mut raw, T_OUT, 0, &[(ram_end + 0x10_0000, 512, 0)]),
        "bad-vmm-area" => request(&mut raw, T_IN, 0, &[(PAGE_TABLES, 512, DESC_F_WRITE)]),
        "bad-direction" => request(&mut raw, T_OUT, 0, &[(data, 512, DESC_F_WRITE)]),
        "bad-loop" => {
            // header -> data -> data -> ... : descriptor 1 names itself as next.
            let header = header(&mut raw, T_OUT, 0);
            let ring = raw.ring();
            ring.set_desc(0, desc(header, 16, DESC_F_NEXT, 1));
            ring.set_desc(1, desc(data, 512, DESC_F_NEXT, 1));
            ring.publish(0);
            notify(&mut raw);
        }
        "bad-queue" => {
            // SAFETY: queue configuration writes make the device touch no memory.
            unsafe {
                raw.write(reg::QUEUE_READY, 0);
                raw.write(reg::QUEUE_NUM, 3);
                raw.write(reg::QUEUE_READY, 1);
            }
        }
        // SAFETY: a write to a read-only register makes the device touch no memory.
        "bad-register" => unsafe { raw.write(reg::MAGIC_VALUE, 0) },
        "outside-window" => {
            // SAFETY: the device's mapping is one 2 MiB page; this address is in it,
            // past the registers, so the read is an MMIO exit no device serves.
            let mut past = unsafe { Mmio::new(BLK_MMIO_BASE + BLK_MMIO_SIZE) };
            let _ = ankh_blk::transport::Transport::read(&mut past, 0);
        }
        _ => {
            Line::new().str(IMAGE).str(": unknown ").str(name).send();
            return UNKNOWN_NAME_CODE;
        }
    }
    Line::new().str(IMAGE).str(": RESUMED ").str(name).send();
    RESUMED_AFTER_FAULT_CODE
}

fn desc(addr: u64, len: u32, flags: u16, next: u16) -> Descriptor {
    Descriptor {
        addr,
        len,
        flags,
        next,
    }
}

/// Writes a header into slot 0 and returns its address.
fn header(raw: &mut Raw<'_, Mmio>, kind: u32, sector: u64) -> u64 {
    raw.ring().set_header(
        0,
        RequestHeader {
            kind,
            reserved: 0,
            sector,
        },
    )
}

/// Posts header, the `segments` (address, length, extra flags) and a status byte as
/// one chain at descriptor 0, and notifies.
fn request(raw: &mut Raw<'_, Mmio>, kind: u32, sector: u64, segments: &[(u64, u32, u16)]) {
    let header = header(raw, kind, sector);
    let ring = raw.ring();
    ring.set_desc(0, desc(header, 16, DESC_F_NEXT, 1));
    let mut index = 1;
    for &(addr, len, flags) in segments {
        ring.set_desc(index, desc(addr, len, flags | DESC_F_NEXT, index + 1));
        index += 1;
    }
    let status = ring.set_status(0, 0xff);
    ring.set_desc(index, desc(status, 1, DESC_F_WRITE, 0));
    ring.publish(0);
    notify(raw);
}

fn notify(raw: &mut Raw<'_, Mmio>) {
    // SAFETY: the chain names this image's own statics and addresses the VMM refuses
    // (that is the point); nothing else accesses them during the call.
    unsafe { raw.write(reg::QUEUE_NOTIFY, 0) };
}
