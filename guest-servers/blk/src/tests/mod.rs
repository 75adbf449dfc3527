//! The driver and the server against a fake device: the handshake, request splitting,
//! bad geometry, bad completions, and the server's validation of VFS's requests.

// Test sizes are small.
#![allow(clippy::cast_possible_truncation)]

mod fake;

use ankh_proto::blk::{Geometry as WireGeometry, Range, SECTORS_MAX};
use ankh_proto::errno::{EINVAL, EIO, ENOSYS};
use ankh_proto::opcode::{BLK_FLUSH, BLK_INFO, BLK_READ, BLK_WRITE, PM_SPAWN};
use ankh_proto::server::{Handled, Reply, Request, Server};
use ankh_proto::testing::RecordingKernel;
use virtio_seep::abi::blk::{
    DEVICE_FEATURES, F_FLUSH, F_SEG_MAX, F_SIZE_MAX, T_FLUSH, T_IN, T_OUT,
};
use zerocopy::{FromBytes, IntoBytes};

use crate::driver::{BlkDriver, InitError, IoError};
use crate::ring::QueueMemory;
use crate::server::BlkServer;
use fake::{Completion, FakeDevice, Seen};

fn memory() -> &'static mut QueueMemory {
    Box::leak(Box::new(QueueMemory::new()))
}

fn driver(device: FakeDevice) -> BlkDriver<FakeDevice> {
    BlkDriver::init(device, memory()).expect("the fake device initializes")
}

fn init_error(device: FakeDevice) -> InitError {
    BlkDriver::init(device, memory()).unwrap_err()
}

/// Bytes whose value depends on their position.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

#[test]
fn the_handshake_negotiates_and_reads_the_geometry() {
    let d = driver(FakeDevice::new(4096));
    let geometry = d.geometry();
    assert_eq!(geometry.sectors, 4096);
    assert_eq!(geometry.segment_max, 1 << 20);
    assert_eq!(
        geometry.segments_per_request, 14,
        "16 descriptors minus header, status"
    );
    assert_eq!(geometry.queue_size, 16);
    assert!(geometry.flush);
    assert_eq!(d.transport().driver_features, DEVICE_FEATURES);
}

#[test]
fn writes_then_reads_round_trip() {
    let mut d = driver(FakeDevice::new(64));
    let data = pattern(3 * 512, 7);
    d.write(5, &data).unwrap();
    assert_eq!(&d.transport().disk[5 * 512..8 * 512], &data[..]);
    let mut back = vec![0; 3 * 512];
    d.read(5, &mut back).unwrap();
    assert_eq!(back, data);
    d.flush().unwrap();
    let kinds: Vec<u32> = d.transport().seen.iter().map(|s| s.kind).collect();
    assert_eq!(kinds, [T_OUT, T_IN, T_FLUSH]);
}

#[test]
fn a_mebibyte_is_one_request_and_one_notify() {
    let mut d = driver(FakeDevice::new(4096));
    let mut buf = vec![0; 1 << 20];
    d.read(100, &mut buf).unwrap();
    let seen = &d.transport().seen;
    assert_eq!(
        seen[..],
        [Seen {
            kind: T_IN,
            sector: 100,
            bytes: 1 << 20,
            segments: 1
        }]
    );
    assert_eq!(d.transport().notifies, 1);
    assert_eq!(d.stats().notifies, 1);
}

#[test]
fn requests_are_split_by_the_device_limits() {
    let mut device = FakeDevice::new(4096);
    device.size_max = 4096 + 100; // rounded down to whole sectors
    device.seg_max = 2;
    device.queue_num_max = 8;
    device.disk = pattern(4096 * 512, 3);
    let mut d = driver(device);
    let geometry = d.geometry();
    assert_eq!(
        (geometry.segment_max, geometry.segments_per_request),
        (4096, 2)
    );
    assert_eq!(geometry.queue_size, 8);
    let mut buf = vec![0; 1 << 20];
    d.read(8, &mut buf).unwrap();
    assert_eq!(buf[..], d.transport().disk[8 * 512..8 * 512 + (1 << 20)]);
    let seen = &d.transport().seen;
    assert_eq!(
        seen.len(),
        (1 << 20) / 8192,
        "two 4 KiB segments per request"
    );
    assert!(seen.iter().all(|s| s.segments <= 2 && s.bytes <= 8192));
    let mut sector = 8;
    for s in seen {
        assert_eq!(s.sector, sector, "requests cover the range in order");
        sector += (s.bytes / 512) as u64;
    }
    assert_eq!(
        d.transport().notifies,
        64,
        "two requests (8 descriptors) per notify"
    );
    // An odd length ends with a short segment.
    let data = pattern(5 * 512, 9);
    d.write(0, &data).unwrap();
    assert_eq!(&d.transport().disk[..5 * 512], &data[..]);
}

#[test]
fn without_limits_the_driver_uses_its_own() {
    let mut device = FakeDevice::new(64);
    device.features &= !((1 << F_SIZE_MAX) | (1 << F_SEG_MAX) | (1 << F_FLUSH));
    let mut d = driver(device);
    let geometry = d.geometry();
    assert_eq!(geometry.segment_max, 1 << 20);
    assert_eq!(geometry.segments_per_request, 14);
    assert!(!geometry.flush);
    d.flush().unwrap();
    assert!(
        d.transport().seen.is_empty(),
        "no flush request without F_FLUSH"
    );
}

#[test]
fn bad_devices_and_geometries_are_refused() {
    let with = |change: fn(&mut FakeDevice)| {
        let mut device = FakeDevice::new(64);
        change(&mut device);
        init_error(device)
    };
    assert_eq!(with(|d| d.magic = 0), InitError::NotVirtio(0));
    assert_eq!(with(|d| d.version = 1), InitError::Version(1));
    assert_eq!(with(|d| d.device_id = 1), InitError::NotBlock(1));
    assert_eq!(with(|d| d.features = 1 << F_FLUSH), InitError::NoVersion1);
    assert_eq!(
        with(|d| d.refuse_features = true),
        InitError::FeaturesRefused
    );
    assert_eq!(with(|d| d.queue_num_max = 0), InitError::NoQueue);
    for change in [
        (|d: &mut FakeDevice| d.capacity = 0) as fn(&mut FakeDevice),
        |d| d.size_max = 511,
        |d| d.seg_max = 0,
        |d| d.blk_size = 300,
        |d| d.queue_num_max = 3,
        |d| d.generation_changes = u32::MAX,
    ] {
        assert!(matches!(with(change), InitError::BadGeometry(_)));
    }
    // A config space that changes once is read again.
    let mut device = FakeDevice::new(64);
    device.generation_changes = 1;
    assert_eq!(driver(device).geometry().sectors, 64);
}

#[test]
fn bad_completions_make_the_driver_stop_trusting_the_device() {
    for completion in [
        Completion::WrongId,
        Completion::WrongLength,
        Completion::BadStatus,
        Completion::Never,
        Completion::Twice,
    ] {
        let mut device = FakeDevice::new(64);
        device.completion = completion;
        let mut d = driver(device);
        let mut buf = vec![0; 512];
        assert!(
            matches!(d.read(0, &mut buf), Err(IoError::BadCompletion(_))),
            "{completion:?}"
        );
        let seen = d.transport().seen.len();
        assert!(matches!(d.write(0, &buf), Err(IoError::BadCompletion(_))));
        assert_eq!(d.transport().seen.len(), seen, "nothing more sent");
    }
    let mut device = FakeDevice::new(64);
    device.completion = Completion::IoError;
    let mut d = driver(device);
    assert_eq!(d.flush(), Err(IoError::Device));
    assert_eq!(
        d.flush(),
        Err(IoError::Device),
        "an I/O error is not distrust"
    );
}

#[test]
fn the_driver_never_sends_a_bad_range() {
    let mut d = driver(FakeDevice::new(64));
    let mut buf = vec![0; 1024];
    assert_eq!(d.read(63, &mut buf), Err(IoError::OutOfRange));
    assert_eq!(d.read(u64::MAX, &mut buf), Err(IoError::OutOfRange));
    assert_eq!(d.read(0, &mut buf[..100]), Err(IoError::BadLength));
    assert_eq!(d.write(0, &[]), Err(IoError::BadLength));
    assert!(d.transport().seen.is_empty());
}

/// The server over a driver over a fake disk of `sectors` sectors of a pattern.
fn server(sectors: u64) -> BlkServer<BlkDriver<FakeDevice>> {
    let mut device = FakeDevice::new(sectors);
    device.disk = pattern((sectors * 512) as usize, 5);
    BlkServer::new(driver(device))
}

fn ask(
    server: &mut BlkServer<BlkDriver<FakeDevice>>,
    opcode: u16,
    payload: &[u8],
    bulk: &[u8],
) -> Reply {
    let request = Request {
        source: 2,
        opcode,
        request_id: 1,
        payload,
        bulk,
    };
    match server.handle(&request, &mut RecordingKernel::default()) {
        Handled::Reply(reply) => reply,
        Handled::Deferred => panic!("the block server answers at once"),
    }
}

fn range(sector: u64, count: u32) -> Vec<u8> {
    Range {
        sector,
        count,
        reserved: 0,
    }
    .as_bytes()
    .to_vec()
}

#[test]
fn the_server_answers_info_read_write_and_flush() {
    let mut s = server(4096);
    let info = ask(&mut s, BLK_INFO, &[], &[]);
    let geometry = WireGeometry::read_from_bytes(&info.payload).unwrap();
    assert_eq!((geometry.sectors, geometry.sector_size), (4096, 512));
    let read = ask(
        &mut s,
        BLK_READ,
        &range(4096 - SECTORS_MAX as u64, SECTORS_MAX),
        &[],
    );
    assert_eq!(read.status, 0);
    assert_eq!(read.bulk.len(), 1 << 20);
    let disk = &s.disk().transport().disk;
    assert_eq!(read.bulk[..], disk[disk.len() - (1 << 20)..]);
    let data = pattern(2 * 512, 77);
    assert_eq!(
        ask(&mut s, BLK_WRITE, &range(1, 2), &data),
        Reply::default()
    );
    assert_eq!(&s.disk().transport().disk[512..1536], &data[..]);
    assert_eq!(ask(&mut s, BLK_FLUSH, &[], &[]), Reply::default());
    assert_eq!(ask(&mut s, PM_SPAWN, &[], &[]).status, ENOSYS);
}

#[test]
fn the_server_refuses_bad_requests_with_einval() {
    let mut s = server(64);
    let bad_reserved = Range {
        sector: 0,
        count: 1,
        reserved: 1,
    };
    let cases: [(u16, Vec<u8>, Vec<u8>); 9] = [
        (BLK_READ, range(63, 2), vec![]),
        (BLK_READ, range(u64::MAX, 1), vec![]),
        (BLK_READ, range(0, 0), vec![]),
        (BLK_READ, range(0, SECTORS_MAX + 1), vec![]),
        (BLK_READ, bad_reserved.as_bytes().to_vec(), vec![]),
        (BLK_READ, vec![0; 8], vec![]),
        (BLK_READ, range(0, 1), vec![0; 512]),
        (BLK_WRITE, range(0, 2), vec![0; 512]),
        (BLK_WRITE, range(64, 1), vec![0; 512]),
    ];
    let before = s.disk().transport().disk.clone();
    for (opcode, payload, bulk) in cases {
        let reply = ask(&mut s, opcode, &payload, &bulk);
        assert_eq!(reply.status, EINVAL, "{opcode:#x} {payload:?}");
    }
    assert!(
        s.disk().transport().seen.is_empty(),
        "nothing reached the device"
    );
    assert_eq!(s.disk().transport().disk, before);
}

#[test]
fn device_failures_are_eio() {
    let mut device = FakeDevice::new(64);
    device.completion = Completion::IoError;
    let mut s = BlkServer::new(driver(device));
    assert_eq!(ask(&mut s, BLK_READ, &range(0, 1), &[]).status, EIO);
    assert_eq!(ask(&mut s, BLK_WRITE, &range(0, 1), &[0; 512]).status, EIO);
    assert_eq!(ask(&mut s, BLK_FLUSH, &[], &[]).status, EIO);
}
