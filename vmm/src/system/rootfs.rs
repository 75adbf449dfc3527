//! The root file system a system's servers get from `SYS_ROOT_FS`.

use ankh_proto::rootfs::{push, ENTRY_DIR, ENTRY_FILE};

/// Why the job list was refused.
#[derive(Debug, thiserror::Error)]
#[error(
    "a program to run must be a name from /bin (at most 60 bytes, no '/'), then its \
     arguments separated by spaces, not {0:?}"
)]
pub struct BadProgram(pub String);

/// The built-in root file system (`ankh_image_catalog::root_fs`), plus `/etc/init.job`
/// listing `/bin/<program>` for each of `programs`, one per line (none: no job file,
/// init runs its default).
pub fn root_fs_with_jobs<S: AsRef<str>>(programs: &[S]) -> Result<Vec<u8>, BadProgram> {
    let mut archive = ankh_image_catalog::root_fs().to_vec();
    if programs.is_empty() {
        return Ok(archive);
    }
    let job = init_jobs(programs)?;
    push(&mut archive, ENTRY_DIR, "/etc", b"");
    push(&mut archive, ENTRY_FILE, INIT_JOBS, job.as_bytes());
    Ok(archive)
}

/// Where init reads its jobs.
pub const INIT_JOBS: &str = "/etc/init.job";

/// The contents of [`INIT_JOBS`] that make init run `programs` (each a program of
/// `/bin`, then its arguments separated by spaces, e.g. `ubench syscall`); empty for
/// none (init then runs its default job).
pub fn init_jobs<S: AsRef<str>>(programs: &[S]) -> Result<String, BadProgram> {
    let mut job = String::new();
    for line in programs.iter().map(AsRef::as_ref) {
        let mut words = line.split(' ').filter(|word| !word.is_empty());
        let bad = || BadProgram(line.to_owned());
        let program = words.next().ok_or_else(bad)?;
        if program.contains('/') || program.len() > 60 || line.contains(['\n', '\r']) {
            return Err(bad());
        }
        job.push_str("/bin/");
        job.push_str(program);
        for word in words {
            job.push(' ');
            job.push_str(word);
        }
        job.push('\n');
    }
    Ok(job)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_lines_name_a_program_of_bin_and_its_arguments() {
        assert_eq!(init_jobs(&["suite"]).unwrap(), "/bin/suite\n");
        assert_eq!(
            init_jobs(&["ubench  syscall pipe", "flood"]).unwrap(),
            "/bin/ubench syscall pipe\n/bin/flood\n"
        );
        assert_eq!(init_jobs::<&str>(&[]).unwrap(), "");
        for bad in ["", "  ", "../etc", "/bin/suite", "a\nb", &"x".repeat(61)] {
            assert!(init_jobs(&[bad]).is_err(), "{bad:?}");
        }
    }
}
