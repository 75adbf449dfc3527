//! Helpers shared by the integration tests, which boot real guests on /dev/kvm.
//!
//! Tests that need KVM fail (never skip) with a message that says KVM is missing.
//!
//! The OS's test tiers run on both substrates: [`on_both_substrates!`] turns a test
//! body taking a [`Substrate`] into one test per substrate, and the helpers that boot
//! the OS ([`run_os`] and its variants) boot it on the substrate of the test's thread
//! ([`substrate`], set by the macro's tests).
//!
//! The VMM library reads the built-in images only once they are installed, as the
//! `ankh` binary does first thing: the helpers a test starts with ([`kvm`],
//! [`on_substrate`], [`os_disk`]) install them (`ankh_images::install`).

use std::cell::Cell;
use std::time::Duration;

pub use ankh_vmm::domain::Substrate;

use ankh_vmm::console::CapturedConsole;
use ankh_vmm::{Domain, DomainConfig, DomainExit, DomainFault, GuestImage, KvmHost};

std::thread_local! {
    static SUBSTRATE: Cell<Substrate> = const { Cell::new(Substrate::Kvm) };
}

/// The substrate the OS helpers boot on in this thread (KVM unless a test of
/// [`on_both_substrates!`] chose otherwise).
pub fn substrate() -> Substrate {
    SUBSTRATE.with(Cell::get)
}

/// Runs `body` with the OS helpers of this thread booting on `substrate`.
pub fn on_substrate<T>(substrate: Substrate, body: impl FnOnce() -> T) -> T {
    ankh_images::install();
    let before = SUBSTRATE.with(|cell| cell.replace(substrate));
    let result = body();
    SUBSTRATE.with(|cell| cell.set(before));
    result
}

/// `on_both_substrates!(name)` for a function `fn name(substrate: Substrate)`: the
/// tests `name::kvm` and `name::process`, each running it with the OS helpers booting
/// on that substrate.
#[macro_export]
macro_rules! on_both_substrates {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[test]
            fn kvm() {
                $crate::on_substrate($crate::Substrate::Kvm, || super::$name($crate::Substrate::Kvm))
            }
            #[test]
            fn process() {
                $crate::on_substrate($crate::Substrate::Process, || {
                    super::$name($crate::Substrate::Process)
                })
            }
        }
    )+};
}

/// Opens /dev/kvm or fails the test with a message that says why. The VMM finds the
/// built-in images, and faults name SSE instructions, from then on, as under the CLI.
pub fn kvm() -> KvmHost {
    ankh_images::install();
    ankh_vmm::fault::name_simd_with(ankh_images::simd::describe_simd);
    KvmHost::open().unwrap_or_else(|e| {
        panic!("this test boots real VMs and needs a usable /dev/kvm, which this host lacks: {e}")
    })
}

/// A built-in image, validated.
pub fn image(name: &str) -> GuestImage {
    let builtin = ankh_images::find(name).unwrap_or_else(|| panic!("no built-in image {name}"));
    GuestImage::parse(builtin.name, builtin.elf.to_vec()).expect("built-in images are valid")
}

/// What a finished domain left behind.
pub struct Finished {
    /// How it ended.
    pub exit: DomainExit,
    /// Its console lines.
    pub lines: Vec<String>,
}

/// Boots `image` in a domain called `name` (default config otherwise) and runs it to
/// the end.
pub fn boot(host: &KvmHost, image_name: &str, config: DomainConfig) -> Finished {
    let console = CapturedConsole::default();
    let mut domain = Domain::create(host, &config, &image(image_name), Box::new(console.clone()))
        .expect("creating the domain");
    let exit = domain.run().expect("running the domain");
    Finished {
        exit,
        lines: console.lines(),
    }
}

/// Boots the `hello` image and checks it greets and exits cleanly: proof that the VMM
/// process is still healthy.
pub fn assert_hello_boots(host: &KvmHost) {
    let done = boot(host, "hello", DomainConfig::named("after"));
    assert_eq!(done.exit, DomainExit::Exited { code: 0 });
    assert_eq!(done.lines, ["hello from after"]);
}

/// [`assert_hello_boots`] on `substrate`.
pub fn assert_hello_boots_on(host: &KvmHost, substrate: Substrate) {
    let config = DomainConfig {
        substrate,
        ..DomainConfig::named("after")
    };
    let done = boot(host, "hello", config);
    assert_eq!(done.exit, DomainExit::Exited { code: 0 });
    assert_eq!(done.lines, ["hello from after"]);
}

/// A config with a short watchdog, for images that hang on purpose.
pub fn short_watchdog(name: &str) -> DomainConfig {
    DomainConfig {
        watchdog_timeout: Duration::from_millis(200),
        ..DomainConfig::named(name)
    }
}

/// Console lines of a whole system, in the order they were printed, with the domain.
#[derive(Clone, Default)]
pub struct SystemConsole {
    lines: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

impl ankh_vmm::console::ConsoleSink for SystemConsole {
    fn line(&mut self, domain: &str, line: &str) {
        self.lines
            .lock()
            .unwrap()
            .push((domain.to_owned(), line.to_owned()));
    }
}

/// What a system run left behind.
pub struct Ran {
    /// How each domain ended up.
    pub report: ankh_vmm::system::SystemReport,
    /// Every console line, `(domain, line)`.
    pub lines: Vec<(String, String)>,
}

impl Ran {
    /// The lines printed by `domain`.
    pub fn lines_of(&self, domain: &str) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|(d, _)| d == domain)
            .map(|(_, l)| l.as_str())
            .collect()
    }

    /// How `domain` ended up.
    pub fn end(&self, domain: &str) -> &ankh_vmm::system::DomainEnd {
        self.report
            .end(domain)
            .unwrap_or_else(|| panic!("no domain {domain}"))
    }

    /// The fault `domain` stopped with.
    pub fn fault(&self, domain: &str) -> &DomainFault {
        match self.end(domain) {
            ankh_vmm::system::DomainEnd::Stopped(DomainExit::Faulted(fault)) => fault,
            other => panic!("{domain} should have faulted, but {other:?}"),
        }
    }

    /// Asserts `domain` exited with code 0.
    pub fn assert_exited_cleanly(&self, domain: &str) {
        assert_eq!(
            self.end(domain),
            &ankh_vmm::system::DomainEnd::Stopped(DomainExit::Exited { code: 0 }),
            "{domain}; console: {:?}",
            self.lines
        );
    }
}

/// Builds a system from `domains` (and `threads`), boots it on KVM and runs it until
/// it is quiet.
pub fn run_system(
    threads: usize,
    rate: Option<ankh_domains::MessageRate>,
    domains: Vec<ankh_domains::DomainSpec>,
) -> Ran {
    run_system_with(threads, rate, domains, false)
}

/// [`run_system`], choosing what happens when a server faults after its window
/// closed: restart it (`fallback_restart`) or shut down.
pub fn run_system_with(
    threads: usize,
    rate: Option<ankh_domains::MessageRate>,
    domains: Vec<ankh_domains::DomainSpec>,
    fallback_restart: bool,
) -> Ran {
    run_system_timed(
        threads,
        rate,
        domains,
        fallback_restart,
        Duration::from_secs(1),
    )
}

/// [`run_system_with`] with a watchdog timeout of `watchdog`.
pub fn run_system_timed(
    threads: usize,
    rate: Option<ankh_domains::MessageRate>,
    domains: Vec<ankh_domains::DomainSpec>,
    fallback_restart: bool,
    watchdog: Duration,
) -> Ran {
    let host = kvm();
    let mut builder = ankh_domains::SystemDescription::builder()
        .threads(threads)
        .domains(domains);
    if let Some(rate) = rate {
        builder = builder.message_rate(rate);
    }
    let description = builder
        .build(&|name| ankh_images::find(name).is_some())
        .expect("a valid system description");
    let console = SystemConsole::default();
    let sink = console.clone();
    let options = ankh_vmm::system::SystemOptions {
        fallback_restart,
        watchdog_timeout: watchdog,
        request_budget: watchdog * 4,
        ..ankh_vmm::system::SystemOptions::new(std::sync::Arc::new(move |_| {
            Box::new(sink.clone()) as Box<dyn ankh_vmm::console::ConsoleSink>
        }))
    };
    let image_of = |name: &str| Ok(image(name));
    let report = ankh_vmm::system::run_system(&host, &description, &image_of, &options)
        .expect("booting the system");
    let lines = console.lines.lock().unwrap().clone();
    Ran { report, lines }
}

/// Boots the OS of `systems/os.toml` with init running `jobs` (programs in `/bin`)
/// and runs it until it is quiet.
pub fn run_os(jobs: &[&str]) -> Ran {
    run_os_with(jobs, None, Vec::new())
}

/// A temporary copy of the built-in root disk whose init runs `jobs`.
pub fn os_disk(jobs: &[&str]) -> ankh_vmm::disk_image::DiskImage {
    ankh_images::install(); // the copy is made from the installed catalog
    let disk = ankh_vmm::disk_image::DiskImage::temporary().expect("a temporary disk image");
    write_jobs(&disk, jobs);
    disk
}

/// `e2fsck -fn` on the image at `path`: its exit status and output. Fails, saying what
/// to install, when e2fsprogs is missing.
pub fn e2fsck(path: &std::path::Path) -> (i32, String) {
    let e2fsck = ["/usr/sbin/e2fsck", "/sbin/e2fsck", "e2fsck"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists() || *p == "e2fsck")
        .expect("a candidate");
    let output = std::process::Command::new(e2fsck)
        .args(["-fn"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run e2fsck ({e}): install e2fsprogs (apt-get install e2fsprogs)")
        });
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

/// Makes init on `disk` run `jobs`.
pub fn write_jobs(disk: &ankh_vmm::disk_image::DiskImage, jobs: &[&str]) {
    let list = ankh_vmm::system::init_jobs(jobs).expect("valid job names");
    disk.write_file(ankh_vmm::system::INIT_JOBS, list.as_bytes())
        .expect("writing init's jobs on the disk");
}

/// [`run_os`] with every server under `policy` (when given) and the planned hot-kills
/// `kills`.
pub fn run_os_with(
    jobs: &[&str],
    policy: Option<ankh_domains::Policy>,
    kills: Vec<ankh_vmm::system::injection::PlannedKill>,
) -> Ran {
    run_os_configured(jobs, policy, kills, false)
}

/// [`run_os_with`], and a restart instead of a controlled shutdown when a server
/// faults after its window closed (`fallback_restart`).
pub fn run_os_configured(
    jobs: &[&str],
    policy: Option<ankh_domains::Policy>,
    kills: Vec<ankh_vmm::system::injection::PlannedKill>,
    fallback_restart: bool,
) -> Ran {
    let disk = os_disk(jobs);
    run_os_full(jobs, policy, kills, fallback_restart, &disk, None)
}

/// Boots the OS on `disk` (kept: run it again to see what persisted), its init
/// running `jobs`, with the policies of `systems/os.toml` and the planned hot-kills.
pub fn run_os_on_disk(
    disk: &ankh_vmm::disk_image::DiskImage,
    jobs: &[&str],
    kills: Vec<ankh_vmm::system::injection::PlannedKill>,
) -> Ran {
    write_jobs(disk, jobs);
    run_os_full(jobs, None, kills, false, disk, None)
}

/// [`run_os`] with the control hub `control`: kills it holds before the start wait
/// for their moment; its counters show the run.
pub fn run_os_controlled(
    jobs: &[&str],
    control: std::sync::Arc<ankh_vmm::system::control::ControlHub>,
) -> Ran {
    let disk = os_disk(jobs);
    run_os_full(jobs, None, Vec::new(), false, &disk, Some(control))
}

/// [`run_os_on_disk`] with every server under `policy` (when given), and a restart
/// instead of a controlled shutdown when a server faults after its window closed
/// (`fallback_restart`).
pub fn run_os_on_disk_with(
    disk: &ankh_vmm::disk_image::DiskImage,
    jobs: &[&str],
    policy: Option<ankh_domains::Policy>,
    kills: Vec<ankh_vmm::system::injection::PlannedKill>,
    fallback_restart: bool,
) -> Ran {
    write_jobs(disk, jobs);
    run_os_full(jobs, policy, kills, fallback_restart, disk, None)
}

fn run_os_full(
    jobs: &[&str],
    policy: Option<ankh_domains::Policy>,
    kills: Vec<ankh_vmm::system::injection::PlannedKill>,
    fallback_restart: bool,
    disk: &ankh_vmm::disk_image::DiskImage,
    control: Option<std::sync::Arc<ankh_vmm::system::control::ControlHub>>,
) -> Ran {
    let host = kvm();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../systems/os.toml");
    let mut description = ankh_domains::SystemDescription::from_path(&path, &|name| {
        ankh_images::find(name).is_some()
    })
    .expect("systems/os.toml is valid");
    if let Some(policy) = policy {
        for spec in &mut description.domains {
            spec.policy = policy;
        }
    }
    let console = SystemConsole::default();
    let sink = console.clone();
    let options = ankh_vmm::system::SystemOptions {
        disk: Some(disk.path().to_owned()),
        // Injected hangs are caught by the watchdog: short, but far above any
        // request's run between two exits.
        watchdog_timeout: Duration::from_millis(500),
        root_fs: ankh_vmm::system::root_fs_with_jobs(jobs)
            .expect("valid job names")
            .into(),
        kills,
        fallback_restart,
        control,
        substrate: substrate(),
        ..ankh_vmm::system::SystemOptions::new(std::sync::Arc::new(move |_| {
            Box::new(sink.clone()) as Box<dyn ankh_vmm::console::ConsoleSink>
        }))
    };
    let image_of = |name: &str| Ok(image(name));
    // One OS at a time per test process: each boots a dozen domains and expects the
    // two CPUs of these hosts to itself (its servers' quotas and its programs' timing
    // are sized for one system, not for two or four side by side).
    let _alone = os_lock();
    let report = ankh_vmm::system::run_system(&host, &description, &image_of, &options)
        .expect("booting the OS");
    let lines = console.lines.lock().unwrap().clone();
    Ran { report, lines }
}

/// The lock that keeps the OS runs of one test process apart (a failed test's
/// poisoning does not stop the next).
fn os_lock() -> std::sync::MutexGuard<'static, ()> {
    static OS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    OS.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The `N passed, M failed` line of the suite, parsed: (passed, failed).
pub fn suite_result(lines: &[&str]) -> (u32, u32) {
    let last = lines
        .iter()
        .rev()
        .find(|l| l.ends_with(" failed"))
        .unwrap_or_else(|| panic!("no result line in {lines:?}"));
    let numbers: Vec<u32> = last
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    (numbers[0], numbers[1])
}

/// The paths `disk-writer` acknowledged (their `fsync` returned).
pub fn acked(ran: &Ran) -> Vec<String> {
    ran.lines_of("disk-writer")
        .into_iter()
        .filter_map(|l| l.strip_prefix("acked "))
        .map(|l| l.split(' ').next().unwrap_or_default().to_owned())
        .collect()
}

/// Asserts that each of `servers` still waits for requests at the end of `ran` (it
/// neither stopped nor hung in a call).
pub fn assert_serving(ran: &Ran, servers: &[&str]) {
    for server in servers {
        assert!(
            matches!(ran.end(server), ankh_vmm::system::DomainEnd::Waiting(_)),
            "{server} still serves: {:?}",
            ran.end(server)
        );
    }
}
