//! The block device and the `blk` driver domain on real KVM, against temporary image
//! files: round trips checked against the file's bytes, malformed device requests that
//! are faults of the domain and leave the file byte-identical, the device window only
//! in the disk's domain, and the device's state rolled back with the memory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ankh_domains::{DomainSpec, Role, SystemDescription};
use ankh_images::expect::{
    blk_initial, blk_written, BLK_BAD_CASES, BLK_CLIENT_OK, BLK_CLIENT_WRITES, BLK_ROLLBACK_BYTE,
    BLK_TEST_SECTORS,
};
use ankh_tests::{image, kvm, Ran};
use ankh_vmm::console::{CapturedConsole, ConsoleSink};
use ankh_vmm::devices::blk::DiskFile;
use ankh_vmm::devices::DeviceFault;
use ankh_vmm::system::{run_system, SystemError, SystemOptions};
use ankh_vmm::virtq::QueueFault;
use ankh_vmm::{Domain, DomainConfig, DomainExit, DomainFault};
use virtio_seep::abi::blk::{BLK_MMIO_BASE, BLK_MMIO_SIZE};
use virtio_seep::abi::hypercall::Hypercall;

const SECTOR: u64 = 512;

/// A temporary disk image holding [`blk_initial`], removed on drop.
struct TempDisk {
    path: PathBuf,
}

impl TempDisk {
    fn new(sectors: u64) -> TempDisk {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "ankh-storage-blk-{}-{}.img",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let bytes: Vec<u8> = (0..sectors * SECTOR).map(blk_initial).collect();
        std::fs::write(&path, bytes).unwrap();
        TempDisk { path }
    }

    fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.path).unwrap()
    }
}

impl Drop for TempDisk {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The `blk` server with `disk = true` and a client process that calls it.
fn blk_system(client: &str) -> SystemDescription {
    SystemDescription::builder()
        .domain(DomainSpec::new("blk", "blk").disk(true).memory_mib(8))
        .domain(
            DomainSpec::new(client, client)
                .role(Role::Process)
                .memory_mib(8)
                .calls(["blk"]),
        )
        .build(&|name| ankh_images::find(name).is_some())
        .expect("a valid system")
}

/// Every console line of a system, with its domain.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<(String, String)>>>);

impl ConsoleSink for Lines {
    fn line(&mut self, domain: &str, line: &str) {
        let mut lines = self.0.lock().unwrap();
        lines.push((domain.to_owned(), line.to_owned()));
    }
}

/// Runs `description` with `disk` as its disk image until it is quiet.
fn run_with_disk(description: &SystemDescription, disk: Option<&Path>) -> Result<Ran, SystemError> {
    let console = Lines::default();
    let sink = console.clone();
    let options = SystemOptions {
        disk: disk.map(Path::to_path_buf),
        watchdog_timeout: Duration::from_secs(5),
        ..SystemOptions::new(Arc::new(move |_| {
            Box::new(sink.clone()) as Box<dyn ConsoleSink>
        }))
    };
    let image_of = |name: &str| Ok(image(name));
    let report = run_system(&kvm(), description, &image_of, &options)?;
    let lines = console.0.lock().unwrap().clone();
    Ok(Ran { report, lines })
}

/// One domain booting `image_name` with `disk` as its disk (or none), run to the end.
fn run_alone(image_name: &str, name: &str, disk: Option<&TempDisk>) -> DomainExit {
    let config = DomainConfig {
        disk: disk.map(|d| Arc::new(DiskFile::open(&d.path).unwrap())),
        ..DomainConfig::named(name)
    };
    let console = Box::new(CapturedConsole::default());
    let mut domain = Domain::create(&kvm(), &config, &image(image_name), console).unwrap();
    domain.run().unwrap()
}

#[test]
fn reads_writes_and_flushes_through_the_blk_domain_reach_the_image_file() {
    let disk = TempDisk::new(BLK_TEST_SECTORS);
    let ran = run_with_disk(&blk_system("blk-client"), Some(&disk.path)).unwrap();
    ran.assert_exited_cleanly("blk-client");
    let client = ran.lines_of("blk-client");
    assert!(
        client.iter().any(|line| line.starts_with(BLK_CLIENT_OK)),
        "{client:?}"
    );
    assert_eq!(ran.lines_of("blk"), ["blk: 4096 sectors"]);
    let bytes = disk.bytes();
    assert_eq!(bytes.len() as u64, BLK_TEST_SECTORS * SECTOR);
    for (offset, &byte) in (0u64..).zip(&bytes) {
        let sector = offset / SECTOR;
        let written = BLK_CLIENT_WRITES
            .iter()
            .any(|&(first, count)| (first..first + u64::from(count)).contains(&sector));
        let want = if written {
            blk_written(offset)
        } else {
            blk_initial(offset)
        };
        assert_eq!(
            byte, want,
            "byte {offset} (sector {sector}, written {written})"
        );
    }
}

#[test]
fn a_disk_domain_without_a_disk_image_is_one_clear_error() {
    let error = match run_with_disk(&blk_system("blk-client"), None) {
        Err(error) => error,
        Ok(_) => panic!("booted a disk domain without a disk"),
    };
    assert!(matches!(error, SystemError::NoDiskImage { ref domain } if domain == "blk"));
    assert_eq!(
        error.to_string(),
        "domain blk has disk = true, but no disk image was given (--disk PATH)"
    );
    let missing = Path::new("/nonexistent/ankh-disk.img");
    assert!(matches!(
        run_with_disk(&blk_system("blk-client"), Some(missing)),
        Err(SystemError::Disk(_))
    ));
}

/// What each `blk-bad` case must stop with.
fn expected_fault(case: &str, fault: &DomainFault) -> bool {
    let device = |check: &dyn Fn(&DeviceFault) -> bool| match fault {
        DomainFault::Device(device) => check(device),
        _ => false,
    };
    let says = |text: &'static str| move |fault: &DeviceFault| matches!(fault, DeviceFault::BadDescriptor(what) if what.contains(text));
    match case {
        "bad-sector" => device(&|f| {
            *f == DeviceFault::SectorOutOfRange {
                sector: BLK_TEST_SECTORS,
                count: 1,
                capacity: BLK_TEST_SECTORS,
            }
        }),
        "bad-overflow" => device(&|f| {
            matches!(
                f,
                DeviceFault::SectorOutOfRange {
                    sector: u64::MAX,
                    count: 2,
                    ..
                }
            )
        }),
        "bad-length" => device(&|f| *f == DeviceFault::UnalignedLength { len: 700 }),
        "bad-address" => device(&says("outside guest memory")),
        "bad-vmm-area" => device(&says("VMM's area")),
        "bad-direction" => device(&says("device-readable data")),
        "bad-loop" => device(&|f| *f == DeviceFault::Queue(QueueFault::Loop)),
        "bad-queue" => {
            device(&|f| matches!(f, DeviceFault::Queue(QueueFault::BadSize { size: 3, .. })))
        }
        "bad-register" => device(&|f| {
            *f == DeviceFault::BadRegisterAccess {
                offset: 0,
                len: 4,
                write: true,
            }
        }),
        "outside-window" => {
            *fault
                == DomainFault::UnownedAddress {
                    gpa: BLK_MMIO_BASE + BLK_MMIO_SIZE,
                    len: 4,
                    write: false,
                }
        }
        other => panic!("no expectation for {other}"),
    }
}

#[test]
fn malformed_device_requests_are_faults_and_leave_the_image_untouched() {
    for case in BLK_BAD_CASES {
        let disk = TempDisk::new(BLK_TEST_SECTORS);
        let before = disk.bytes();
        let exit = run_alone("blk-bad", case, Some(&disk));
        let DomainExit::Faulted(fault) = &exit else {
            panic!("{case}: {exit}");
        };
        assert!(expected_fault(case, fault), "{case}: {fault}");
        assert!(disk.bytes() == before, "{case}: the image changed");
    }
}

#[test]
fn only_the_disk_domain_has_the_device_window() {
    let exit = run_alone("blk-bad", "bad-sector", None);
    assert!(
        matches!(
            exit,
            DomainExit::Faulted(DomainFault::CpuException {
                vector: 14,
                cr2: BLK_MMIO_BASE,
                ..
            })
        ),
        "{exit}"
    );
    // And MMIO outside any device is still a fault, disk or not.
    let disk = TempDisk::new(8);
    let exit = run_alone("fault-mmio", "mmio", Some(&disk));
    assert!(
        matches!(
            exit,
            DomainExit::Faulted(DomainFault::UnownedAddress { write: true, .. })
        ),
        "{exit}"
    );
}

#[test]
fn a_rollback_puts_the_device_back_with_the_memory() {
    let disk = TempDisk::new(8);
    let config = DomainConfig {
        disk: Some(Arc::new(DiskFile::open(&disk.path).unwrap())),
        dirty_log: true,
        ..DomainConfig::named("rollback")
    };
    let console = Box::new(CapturedConsole::default());
    let mut domain = Domain::create(&kvm(), &config, &image("blk-rollback"), console).unwrap();
    let to_nop = |domain: &mut Domain| {
        assert_eq!(
            domain.run_until(|call| call == Hypercall::Nop).unwrap(),
            None
        );
    };
    to_nop(&mut domain);
    domain.checkpoint().unwrap();
    to_nop(&mut domain);
    assert_eq!(domain.blk_stats().unwrap().bytes_written, 512);
    // Back before the write: the guest's queue and the device's agree again, so the
    // write runs a second time and completes.
    domain.rollback().unwrap();
    to_nop(&mut domain);
    assert_eq!(domain.run().unwrap(), DomainExit::Exited { code: 0 });
    let stats = domain.blk_stats().unwrap();
    assert_eq!((stats.bytes_written, stats.bytes_read), (1024, 512));
    assert!(disk.bytes()[..512].iter().all(|&b| b == BLK_ROLLBACK_BYTE));
}
