//! Helpers shared by the integration tests, which boot real guests on /dev/kvm.
//!
//! Tests that need KVM fail (never skip) with a message that says KVM is missing.

use std::time::Duration;

use ankh_vmm::console::CapturedConsole;
use ankh_vmm::{Domain, DomainConfig, DomainExit, GuestImage, KvmHost};

/// Opens /dev/kvm or fails the test with a message that says why.
pub fn kvm() -> KvmHost {
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

/// A config with a short watchdog, for images that hang on purpose.
pub fn short_watchdog(name: &str) -> DomainConfig {
    DomainConfig {
        watchdog_timeout: Duration::from_millis(200),
        ..DomainConfig::named(name)
    }
}
