//! `ankh run-image`: boot one image and report how it ended.

use std::error::Error;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use ankh_vmm::console::StdoutConsole;
use ankh_vmm::devices::blk::DiskFile;
use ankh_vmm::domain::Substrate;
use ankh_vmm::{Domain, DomainConfig, DomainExit, GuestImage, GuestMode, KvmHost};
use clap::Args;

use super::status;

#[derive(Debug, Args)]
pub struct RunImageArgs {
    /// A built-in image name (see `ankh images`) or the path of an ELF image.
    image: String,
    /// Guest RAM in MiB.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(2..=1024))]
    memory_mib: u64,
    /// Stop the guest as hung when it runs this long without an exit.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    watchdog_ms: u64,
    /// The domain's name (console prefix); defaults to the image's name.
    #[arg(long)]
    name: Option<String>,
    /// The privilege level the guest runs at (user: native speed on kvm_pvm hosts).
    #[arg(long, value_enum, default_value_t = GuestMode::User)]
    mode: GuestMode,
    /// Give the domain a virtio-blk disk over this raw image file.
    #[arg(long, value_name = "PATH")]
    disk: Option<std::path::PathBuf>,
    /// What runs the domain: a KVM VM, or a Linux process (the microkernel build).
    #[arg(long, value_enum, default_value_t = Substrate::Kvm)]
    substrate: Substrate,
}

/// Loads a built-in image by name, or an image file by path.
pub fn resolve_image(spec: &str) -> Result<GuestImage, Box<dyn Error>> {
    if let Some(builtin) = ankh_images::find(spec) {
        return Ok(GuestImage::parse(builtin.name, builtin.elf.to_vec())?);
    }
    let path = Path::new(spec);
    if !path.exists() {
        return Err(UnknownImage {
            spec: spec.to_owned(),
        }
        .into());
    }
    Ok(GuestImage::from_path(path)?)
}

/// An image that is neither built in nor a file (a user mistake: status 2).
#[derive(Debug, thiserror::Error)]
#[error("no built-in image and no file called {spec:?}; `ankh images` lists the built-in ones")]
pub struct UnknownImage {
    spec: String,
}

pub fn run(args: RunImageArgs) -> Result<ExitCode, Box<dyn Error>> {
    let image = resolve_image(&args.image)?;
    let host = KvmHost::open()?;
    let config = DomainConfig {
        name: args.name.unwrap_or_else(|| image.name().to_owned()),
        memory_size: args.memory_mib << 20,
        watchdog_timeout: Duration::from_millis(args.watchdog_ms),
        mode: args.mode,
        identity: Default::default(),
        dirty_log: false,
        disk: match &args.disk {
            Some(path) => Some(std::sync::Arc::new(DiskFile::open(path)?)),
            None => None,
        },
        debug: None,
        substrate: args.substrate,
    };
    let mut domain = Domain::create(&host, &config, &image, Box::new(StdoutConsole))?;
    let exit = domain.run()?;
    outln!("ankh: domain {} {exit}", domain.name())?;
    Ok(ExitCode::from(match exit {
        DomainExit::Exited { code: 0 } | DomainExit::Halted => status::CLEAN,
        DomainExit::Exited { .. } => status::GUEST_ERROR_CODE,
        DomainExit::Faulted(_) => status::FAULT,
    }))
}
