//! Exercises the `blk` server over IPC on a disk of `BLK_TEST_SECTORS` sectors holding
//! `blk_initial`: its geometry, reads (up to 1 MiB) of what the host wrote, the writes
//! of `BLK_CLIENT_WRITES` read back, a flush, and requests the server must refuse
//! with `EINVAL`. Prints `BLK_CLIENT_OK` and returns 0, or a `FAILED` line and
//! `IPC_FAILED_CODE`. The host then compares the image file.
#![no_std]
#![no_main]

use ankh_guest_rt::console::Line;
use ankh_guest_rt::ipc::Ipc;
use ankh_guest_rt::BootInfo;
use ankh_proto::blk::{Geometry, Range, SECTORS_MAX};
use ankh_test_images::buffer::OnceBuffer;
use ankh_test_images::expect::{
    blk_initial, blk_written, BLK_CLIENT_OK, BLK_CLIENT_WRITES, BLK_PEER, BLK_TEST_SECTORS,
};
use ankh_test_images::report::{failed, failed_errno};
use virtio_seep::errno::{Errno, EINVAL};
use virtio_seep::opcode::{BLK_FLUSH, BLK_INFO, BLK_READ, BLK_WRITE};
use zerocopy::{FromBytes, IntoBytes};

ankh_guest_rt::entry!(main);

const IMAGE: &str = "blk-client";
const SECTOR: u64 = 512;

/// The data of a write (up to 1 MiB).
static BUFFER: OnceBuffer<{ 1 << 20 }> = OnceBuffer::new();

fn range(sector: u64, count: u32) -> Range {
    Range {
        sector,
        count,
        reserved: 0,
    }
}

/// What byte `offset` of the disk holds after the client's writes.
fn expected(offset: u64) -> u8 {
    let sector = offset / SECTOR;
    let written = BLK_CLIENT_WRITES
        .iter()
        .any(|&(first, count)| (first..first + u64::from(count)).contains(&sector));
    if written {
        blk_written(offset)
    } else {
        blk_initial(offset)
    }
}

/// Reads `count` sectors at `sector` and compares them with `want`; the index of the
/// check that failed, as an error.
fn check_read(
    ipc: &mut Ipc,
    blk: u32,
    sector: u64,
    count: u32,
    want: fn(u64) -> u8,
) -> Result<(), (&'static str, Option<Errno>)> {
    let reply = ipc
        .sendrec(blk, BLK_READ, range(sector, count).as_bytes(), &[])
        .map_err(|errno| ("read", Some(errno)))?;
    if reply.bulk.len() as u64 != u64::from(count) * SECTOR {
        return Err(("read length", None));
    }
    let start = sector * SECTOR;
    let same = reply
        .bulk
        .iter()
        .zip(start..)
        .all(|(&byte, offset)| byte == want(offset));
    if !same {
        return Err(("read data", None));
    }
    Ok(())
}

fn main(boot: &BootInfo) -> u32 {
    let Some(blk) = boot.peer(BLK_PEER) else {
        return failed(IMAGE, "no peer blk", 0);
    };
    let mut ipc = Ipc::init();
    let buffer = BUFFER.take();
    let mut checks = 0;
    let fail = |what: &str, errno: Option<Errno>, checks: u64| match errno {
        Some(errno) => failed_errno(IMAGE, what, checks, errno),
        None => failed(IMAGE, what, checks),
    };

    let geometry = match ipc.sendrec(blk, BLK_INFO, &[], &[]) {
        Ok(reply) => Geometry::read_from_prefix(reply.payload)
            .ok()
            .map(|(g, _)| g),
        Err(errno) => return fail("info", Some(errno), checks),
    };
    let Some(geometry) = geometry else {
        return fail("info payload", None, checks);
    };
    if geometry.sectors != BLK_TEST_SECTORS || geometry.sector_size != 512 {
        return fail("geometry", None, checks);
    }
    checks += 1;

    for (sector, count) in [(0, 8), (100, SECTORS_MAX), (BLK_TEST_SECTORS - 1, 1)] {
        if let Err((what, errno)) = check_read(&mut ipc, blk, sector, count, blk_initial) {
            return fail(what, errno, checks);
        }
        checks += 1;
    }

    for (sector, count) in BLK_CLIENT_WRITES {
        let len = count as usize * ankh_proto::blk::SECTOR_SIZE;
        for (byte, offset) in buffer[..len].iter_mut().zip(sector * SECTOR..) {
            *byte = blk_written(offset);
        }
        let payload = range(sector, count);
        if let Err(errno) = ipc.sendrec(blk, BLK_WRITE, payload.as_bytes(), &buffer[..len]) {
            return fail("write", Some(errno), checks);
        }
        checks += 1;
    }
    if let Err(errno) = ipc.sendrec(blk, BLK_FLUSH, &[], &[]) {
        return fail("flush", Some(errno), checks);
    }
    checks += 1;
    for (sector, count) in [(8, 6), (2048, SECTORS_MAX), (2040, 16)] {
        if let Err((what, errno)) = check_read(&mut ipc, blk, sector, count, expected) {
            return fail(what, errno, checks);
        }
        checks += 1;
    }

    let bad_reserved = Range {
        sector: 0,
        count: 1,
        reserved: 7,
    };
    let refused: [(u16, Range, usize); 6] = [
        (BLK_READ, range(BLK_TEST_SECTORS - 1, 2), 0),
        (BLK_READ, range(0, 0), 0),
        (BLK_READ, range(0, SECTORS_MAX + 1), 0),
        (BLK_READ, bad_reserved, 0),
        (BLK_WRITE, range(0, 2), 512),
        (BLK_WRITE, range(BLK_TEST_SECTORS, 1), 512),
    ];
    for (opcode, payload, bulk) in refused {
        match ipc.sendrec(blk, opcode, payload.as_bytes(), &buffer[..bulk]) {
            Err(EINVAL) => checks += 1,
            Err(errno) => return fail("refusal", Some(errno), checks),
            Ok(_) => return fail("refusal accepted", None, checks),
        }
    }

    Line::new()
        .str(BLK_CLIENT_OK)
        .str(" (")
        .dec(checks)
        .str(" checks)")
        .send();
    0
}
