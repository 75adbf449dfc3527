//! `ankh disk check IMG`: leaves a system's disk image clean (journal replayed, orphans
//! freed, as the next boot would) and checks it, saying what it did; and the line
//! `ankh up` prints when it does the same at exit.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ankh_proto::errno::EINVAL;
use ankh_vmm::disk_image::{self, DiskImageError, Recovered};
use clap::{Args, Subcommand};

use super::status;

/// `ankh disk ...`.
#[derive(Debug, Subcommand)]
pub enum DiskCommand {
    /// Replay the image's journal and free orphans if needed (what the next boot would
    /// do), then check it: every directory and file read back, and `e2fsck -fn` when
    /// e2fsprogs is installed. Exit status 0 when consistent, 1 when not.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The disk image (e.g. the PATH of `ankh up --disk PATH`).
    image: PathBuf,
}

/// Where e2fsck may be.
const E2FSCK: [&str; 2] = ["/usr/sbin/e2fsck", "/sbin/e2fsck"];

pub fn run(command: DiskCommand) -> Result<ExitCode, Box<dyn Error>> {
    match command {
        DiskCommand::Check(args) => check(&args.image),
    }
}

fn check(image: &Path) -> Result<ExitCode, Box<dyn Error>> {
    let recovered = match disk_image::recover(image) {
        Ok(recovered) => recovered,
        // An ext2 file system too damaged to mount: inconsistent, not a usage error.
        Err(e @ DiskImageError::Unrecoverable { errno, .. }) if errno != EINVAL => {
            eprintln!("ankh: {e}: inconsistent");
            return Ok(ExitCode::from(status::INCONSISTENT));
        }
        Err(e) => return Err(e.into()),
    };
    for line in describe(&recovered) {
        outln!("{line}")?;
    }
    let mut consistent = true;
    match disk_image::walk(image)? {
        Ok(tree) => outln!(
            "files: {} directories and {} files read back ({} bytes)",
            tree.dirs,
            tree.files,
            tree.bytes
        )?,
        Err(failed) => {
            outln!("files: cannot read {failed}")?;
            consistent = false;
        }
    }
    match E2FSCK.iter().find(|p| Path::new(p).exists()) {
        Some(e2fsck) => {
            let output = std::process::Command::new(e2fsck)
                .arg("-fn")
                .arg(image)
                .output()
                .map_err(|e| format!("cannot run {e2fsck}: {e}"))?;
            if output.status.success() {
                outln!("e2fsck -fn: clean")?;
            } else {
                consistent = false;
                outln!(
                    "e2fsck -fn: found problems (status {}):",
                    output
                        .status
                        .code()
                        .map_or_else(|| "killed".to_owned(), |c| c.to_string())
                )?;
                out!("{}", String::from_utf8_lossy(&output.stdout))?;
            }
        }
        None => outln!("e2fsck: not installed (e2fsprogs); checked by reading back only")?,
    }
    if consistent {
        outln!("{}: consistent", image.display())?;
        Ok(ExitCode::from(status::CLEAN))
    } else {
        outln!("{}: inconsistent", image.display())?;
        Ok(ExitCode::from(status::INCONSISTENT))
    }
}

/// What a recovery did, one line for the journal and one for orphans.
fn describe(recovered: &Recovered) -> [String; 2] {
    let journal = match recovered.repairs.replayed {
        None => "journal: nothing to replay".to_owned(),
        Some(txn) if txn.rewritten == 0 => format!(
            "journal: transaction {} ({} blocks) was already in place; cleared",
            txn.sequence, txn.blocks
        ),
        Some(txn) => format!(
            "journal: replayed transaction {}: {} of its {} blocks were not in place yet \
             (the system stopped mid-sync); cleared",
            txn.sequence, txn.rewritten, txn.blocks
        ),
    };
    let orphans = match recovered.repairs.orphans_freed {
        0 => "orphans: none".to_owned(),
        1 => "orphans: freed 1 file unlinked while open".to_owned(),
        n => format!("orphans: freed {n} files unlinked while open"),
    };
    [journal, orphans]
}

/// After any end of `ankh up` on a kept image: leaves it clean for e2fsck and with
/// nothing to replay, and prints one line saying what that took (or why it could not
/// be done: then the image is left as it is).
pub fn leave_clean(image: &Path) -> std::io::Result<()> {
    match disk_image::recover(image) {
        Ok(recovered) => {
            let [journal, orphans] = describe(&recovered);
            outln!(
                "ankh: disk {}: {journal}; {orphans} ({:.1} ms)",
                image.display(),
                recovered.took.as_secs_f64() * 1000.0
            )?;
        }
        Err(DiskImageError::Unrecoverable { errno: EINVAL, .. }) => outln!(
            "ankh: disk {}: no ext2 file system of Ankh's on it; left as it is",
            image.display()
        )?,
        Err(e) => eprintln!(
            "ankh: disk {}: left as it is ({}); see `ankh disk check`",
            image.display(),
            super::error_chain(&e)
        ),
    }
    Ok(())
}
