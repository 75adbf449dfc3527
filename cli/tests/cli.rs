//! The `ankh` binary as a user runs it: exit statuses and what it prints.

use std::process::Command;

fn ankh(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ankh"))
        .args(args)
        .output()
        .expect("running ankh");
    (
        output.status.code().expect("ankh exits normally"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn up_run_suite_exits_zero_when_every_check_passes() {
    let (status, stdout, stderr) = ankh(&["up", "--run", "suite"]);
    assert_eq!(status, 0, "stdout: {stdout}\nstderr: {stderr}");
    let suite: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("[suite] "))
        .collect();
    assert_eq!(
        suite,
        [
            "suite: 0 failed, 0 of them after ERESTART; 0 ERESTART answers",
            suite[suite.len() - 1]
        ],
        "{stdout}"
    );
    assert!(suite[1].ends_with(" passed, 0 failed"), "{stdout}");
}

#[test]
fn up_exits_with_inits_status() {
    // init reports a job that faulted as 128 + cause (129), and so does `ankh up`.
    let (status, stdout, _) = ankh(&["up", "--run", "child-ud2"]);
    assert_eq!(status, 129, "{stdout}");
    assert!(
        stdout.contains("[init] init: /bin/child-ud2 exited with 129 (fault)"),
        "{stdout}"
    );
}

#[test]
fn run_image_statuses_tell_clean_exits_from_faults() {
    assert_eq!(ankh(&["run-image", "hello"]).0, 0);
    assert_eq!(ankh(&["run-image", "exit7"]).0, 1);
    assert_eq!(ankh(&["run-image", "fault-ud2"]).0, 3);
    // A bad image is the host's problem (4); a name that is no image is the user's (2).
    let (status, _, stderr) = ankh(&["run-image", "/etc/hostname"]);
    assert_eq!(status, 4, "{stderr}");
    let (status, _, stderr) = ankh(&["run-image", "no-such-image"]);
    assert_eq!(status, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
}

/// The cause of an I/O error is said once (it is the error's `source`, printed as the
/// tail of the line, and not also part of the error's own message).
fn says_once(stderr: &str, cause: &str) {
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert_eq!(stderr.matches(cause).count(), 1, "the cause once: {stderr}");
}

#[test]
fn a_directory_given_as_a_file_is_a_user_mistake_said_once() {
    let (status, _, stderr) = ankh(&["up", "--disk", "/tmp"]);
    assert_eq!(status, 2, "{stderr}");
    assert!(
        stderr.starts_with("ankh: error: disk image /tmp: "),
        "{stderr}"
    );
    says_once(&stderr, "Is a directory");
    let (status, _, stderr) = ankh(&["run-image", "/tmp"]);
    assert_eq!(status, 2, "{stderr}");
    says_once(&stderr, "Is a directory");
    let (status, _, stderr) = ankh(&["run-image", "hello", "--disk", "/tmp"]);
    assert_eq!(status, 2, "{stderr}");
    says_once(&stderr, "Is a directory");
}

#[test]
fn a_disk_in_a_missing_directory_and_an_empty_benchmark_are_user_mistakes() {
    let (status, _, stderr) = ankh(&["up", "--disk", "/nonexistent-ankh-dir/disk.img"]);
    assert_eq!(status, 2, "{stderr}");
    says_once(&stderr, "No such file or directory");
    let (status, _, stderr) = ankh(&["bench", "boot", "--boots", "0"]);
    assert_eq!(status, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
}

#[test]
fn bad_input_gets_one_line_and_status_2() {
    let test_dir = TestDir::new("cli");
    let dir = &test_dir.0;
    let config = dir.join("broken.toml");
    std::fs::write(
        &config,
        "[[domain]]\nname = \"a\"\nimage = \"hello\"\ncalls = [\"b\"]\n",
    )
    .unwrap();
    let (status, _, stderr) = ankh(&["up", "--config", config.to_str().unwrap()]);
    assert_eq!(status, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("line 4") && stderr.contains("\"b\""),
        "{stderr}"
    );
    assert_eq!(ankh(&["up", "--threads", "0"]).0, 2);
    assert_eq!(ankh(&["up", "--run", "../etc"]).0, 2);
}

/// The numbers of `phase K: N passed, M failed (E of the failures after ERESTART; A
/// calls answered ERESTART, made again); R recoveries during it` (or `1 recovery`), in
/// that order.
fn phase_numbers(stdout: &str, phase: u32) -> Vec<u64> {
    let prefix = format!("phase {phase}: ");
    let line = stdout
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .find(|l| l.contains(" passed, "))
        .unwrap_or_else(|| panic!("no result of phase {phase}: {stdout}"));
    line.split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect()
}

/// Every check of the suite, in a run without faults.
const SUITE_CHECKS: u64 = 252;

#[test]
fn demo_survives_hot_kills_of_every_server_and_proves_it() {
    demo_survives_hot_kills_of_every_server_and_proves_it_on("kvm");
}

/// The same demo, the same verdict, with every domain a Linux process.
#[test]
fn demo_survives_on_the_process_substrate_too() {
    demo_survives_hot_kills_of_every_server_and_proves_it_on("process");
}

fn demo_survives_hot_kills_of_every_server_and_proves_it_on(substrate: &str) {
    let (status, stdout, stderr) = ankh(&["demo", "--substrate", substrate]);
    let verdict = stdout
        .lines()
        .find(|l| l.starts_with("verdict: "))
        .unwrap_or_else(|| panic!("no verdict: {stdout}\nstderr: {stderr}"));
    // Phase 1: every check ran, and each failure followed an ERESTART.
    // Phase 1: every check ran, each failure followed an ERESTART, and there were
    // requests answered ERESTART (error virtualization happened).
    let [passed, failed, after_restart, answers, recoveries] = phase_numbers(&stdout, 1)[..] else {
        panic!("{stdout}")
    };
    // (A check may be skipped after one that failed.)
    assert!(passed + failed <= SUITE_CHECKS, "{stdout}");
    assert_eq!(after_restart, failed, "{stdout}");
    assert!(answers > 0 && recoveries > 0, "{stdout}");
    // Phase 2: after the last recovery, every check passes, and nothing was restarted.
    assert_eq!(
        phase_numbers(&stdout, 2),
        [SUITE_CHECKS, 0, 0, 0, 0],
        "{stdout}"
    );
    assert!(verdict.starts_with("verdict: survived: "), "{verdict}");
    assert_eq!(status, 0, "stdout: {stdout}\nstderr: {stderr}");
    for server in ["ds", "vfs", "mm", "pm", "blk"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("recovery: {server} "))),
            "{server} was killed and recovered: {stdout}"
        );
    }
}

#[test]
fn demo_says_when_the_system_did_not_survive() {
    // Without recovery the first kill halts the system: no phase finishes.
    let (status, stdout, _) = ankh(&["demo", "--policy", "none"]);
    assert_eq!(status, 3, "a halt: {stdout}");
    let verdict = stdout
        .lines()
        .find(|l| l.starts_with("verdict: "))
        .unwrap_or_else(|| panic!("no verdict: {stdout}"));
    assert!(
        verdict.starts_with("verdict: did not survive: the system stopped: ")
            && verdict.contains("its policy halts")
            && verdict.contains("phase 2 did not run"),
        "{verdict}"
    );
    assert!(!stdout.contains("phase 2: "), "{stdout}");
}

/// `ankh up --control` with `ankh ctl`: status, then a hot-kill of an idle server,
/// then the recovery shows in the status. ubench runs meanwhile (it lasts seconds).
#[test]
fn ctl_kills_an_idle_server_of_a_running_system_and_status_shows_the_recovery() {
    use std::time::{Duration, Instant};

    let test_dir = TestDir::new("ctl");
    let dir = &test_dir.0;
    let socket = dir.join("control.sock");
    let socket = socket.to_str().unwrap();
    let mut system = Command::new(env!("CARGO_BIN_EXE_ankh"))
        .args(["up", "--control", socket, "--run", "ubench"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("running ankh up");
    let ctl = |args: &[&str]| {
        let mut all = vec!["ctl", "--control", socket];
        all.extend_from_slice(args);
        ankh(&all)
    };
    // Waits (bounded) until the status satisfies `done`; returns that status.
    let wait_for = |what: &str, done: &dyn Fn(&serde_json::Value) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, stdout, _) = ctl(&["status"]);
            if status == 0 {
                let answer: serde_json::Value = serde_json::from_str(&stdout).unwrap();
                if done(&answer) {
                    return answer;
                }
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let domain = |answer: &serde_json::Value, name: &str| {
        answer["domains"]
            .as_array()
            .and_then(|all| all.iter().find(|d| d["name"] == name).cloned())
            .unwrap_or_default()
    };
    let status = wait_for("ds to serve requests", &|s| {
        domain(s, "ds")["requests"].as_u64() > Some(0)
    });
    for server in ["ds", "vfs", "mm", "pm"] {
        assert_eq!(domain(&status, server)["state"], "up", "{status}");
    }

    let (code, stdout, _) = ctl(&["kill", "ds", "--when", "idle", "--kind", "crash"]);
    assert_eq!((code, stdout.trim()), (0, r#"{"ok":true}"#));
    let status = wait_for("the recovery of ds", &|s| {
        domain(s, "ds")["recoveries"]["rollback"].as_u64() == Some(1)
    });
    assert_eq!(domain(&status, "ds")["state"], "up", "{status}");

    // Bad requests: a server that does not exist, a time that does not exist.
    let (code, stdout, _) = ctl(&["kill", "nosuch"]);
    assert_eq!(code, 2);
    assert!(stdout.contains("no server domain"), "{stdout}");
    let (code, _, stderr) = ctl(&["kill", "ds", "--when", "later"]);
    assert_eq!(code, 2, "{stderr}");

    system.kill().expect("stopping ankh up");
    system.wait().expect("reaping ankh up");
    // Nobody answers any more: the person is told, in one line.
    let (code, _, stderr) = ctl(&["status"]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("is `ankh up --control"), "{stderr}");
}

/// A temporary directory of this test process, removed at the end.
struct TestDir(std::path::PathBuf);

impl TestDir {
    fn new(name: &str) -> TestDir {
        let dir = std::env::temp_dir().join(format!("ankh-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TestDir(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).to_str().unwrap().to_owned()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const IPC_DEMO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../systems/ipc-demo.toml");

/// Starts `ankh up --control socket` with `args`; returns once the socket is there.
fn up_with_control(socket: &str, args: &[&str]) -> std::process::Child {
    use std::time::{Duration, Instant};

    let system = Command::new(env!("CARGO_BIN_EXE_ankh"))
        .args(["up", "--control", socket])
        .args(args)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("running ankh up");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::path::Path::new(socket).exists() {
        assert!(Instant::now() < deadline, "no control socket at {socket}");
        std::thread::sleep(Duration::from_millis(10));
    }
    system
}

#[test]
fn up_control_refuses_a_path_that_is_not_a_stale_socket_and_leaves_it_alone() {
    let dir = TestDir::new("control-refused");
    let file = dir.path("notes.txt");
    std::fs::write(&file, "keep me").unwrap();
    let (status, _, stderr) = ankh(&["up", "--control", &file, "--config", IPC_DEMO]);
    assert_eq!(status, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("a regular file is there"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");

    let (status, _, stderr) = ankh(&["up", "--control", &dir.path(""), "--config", IPC_DEMO]);
    assert_eq!(status, 2, "{stderr}");
    assert!(stderr.contains("a directory is there"), "{stderr}");

    // The socket of a running system is in use: a second system is refused.
    let socket = dir.path("control.sock");
    let mut first = up_with_control(&socket, &["--run", "ubench"]);
    let (status, _, stderr) = ankh(&["up", "--control", &socket, "--config", IPC_DEMO]);
    assert_eq!(status, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("in use by a running process"), "{stderr}");
    let (code, stdout, _) = ankh(&["ctl", "--control", &socket, "status"]);
    assert_eq!(code, 0, "the first system still answers: {stdout}");
    first.kill().expect("stopping ankh up");
    first.wait().expect("reaping ankh up");
}

#[test]
fn up_removes_its_control_socket_on_every_exit() {
    use std::os::unix::process::ExitStatusExt;

    let dir = TestDir::new("control-removed");
    let socket = dir.path("control.sock");
    // The system ends by itself.
    let (status, stdout, stderr) = ankh(&["up", "--control", &socket, "--config", IPC_DEMO]);
    assert_eq!(status, 0, "{stdout}{stderr}");
    assert!(!std::path::Path::new(&socket).exists());

    // An error after the socket was opened (a bad disk).
    let garbage = dir.path("garbage.img");
    std::fs::write(&garbage, vec![0x5a; 1 << 20]).unwrap();
    let (status, _, stderr) = ankh(&["up", "--control", &socket, "--disk", &garbage]);
    assert_eq!(status, 2, "{stderr}");
    assert!(!std::path::Path::new(&socket).exists());

    // SIGTERM (SIGINT and SIGHUP are handled alike): the process still dies of it.
    let system = up_with_control(&socket, &["--run", "ubench"]);
    let pid = libc::pid_t::try_from(system.id()).unwrap();
    // SAFETY: sending a signal to the child this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let output = system.wait_with_output().expect("reaping ankh up");
    assert_eq!(output.status.signal(), Some(libc::SIGTERM));
    assert!(!std::path::Path::new(&socket).exists());

    // SIGKILL leaves a stale socket, which the next system replaces.
    let mut system = up_with_control(&socket, &["--run", "ubench"]);
    system.kill().expect("SIGKILL");
    system.wait().expect("reaping ankh up");
    assert!(std::path::Path::new(&socket).exists());
    let (status, stdout, stderr) = ankh(&["up", "--control", &socket, "--config", IPC_DEMO]);
    assert_eq!(status, 0, "{stdout}{stderr}");
    assert!(!std::path::Path::new(&socket).exists());
}

#[test]
fn a_bad_disk_gets_one_line_and_status_2() {
    let test_dir = TestDir::new("disk");
    let dir = &test_dir.0;
    let garbage = dir.join("garbage.img");
    std::fs::write(&garbage, vec![0x5a; 1 << 20]).unwrap();
    let (status, _, stderr) = ankh(&["up", "--disk", garbage.to_str().unwrap()]);
    assert_eq!(status, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("not an Ankh root file system"), "{stderr}");
    let (status, _, stderr) = ankh(&[
        "up",
        "--config",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../systems/ipc-demo.toml"),
        "--disk",
        garbage.to_str().unwrap(),
    ]);
    assert_eq!(status, 2, "{stderr}");
    assert!(stderr.contains("no domain with disk = true"), "{stderr}");
}

#[test]
fn up_disk_keeps_files_across_runs() {
    let test_dir = TestDir::new("keep");
    let dir = &test_dir.0;
    let image = dir.join("disk.img");
    let image = image.to_str().unwrap();
    let (status, stdout, _) = ankh(&["up", "--disk", image, "--run", "disk-writer"]);
    assert_eq!(status, 0, "{stdout}");
    // At exit, ankh up replayed the last sync's transaction and cleared the journal.
    assert!(
        stdout.contains(&format!("ankh: disk {image}: journal: transaction ")),
        "{stdout}"
    );
    let (clean, report) = e2fsck(std::path::Path::new(image));
    assert!(clean, "{report}");
    let (status, stdout, _) = ankh(&["up", "--disk", image, "--run", "disk-check"]);
    assert_eq!(status, 0, "{stdout}");
    assert!(
        stdout.contains("[disk-check] ok /data/f23 1000000"),
        "{stdout}"
    );
}

/// `e2fsck -fn IMAGE`: whether it found the image clean, and what it printed.
fn e2fsck(image: &std::path::Path) -> (bool, String) {
    let output = Command::new("/usr/sbin/e2fsck")
        .arg("-fn")
        .arg(image)
        .output()
        .expect("e2fsck runs (install e2fsprogs)");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// An image file as a device that stops taking writes `writes_after_flush` writes
/// after its first flush: the system stopped between a sync's commit (the journal
/// flushed) and the end of its in-place writes.
struct StopsMidSync {
    disk: ankh_vmm::disk_image::FileDisk,
    flushed: bool,
    writes_after_flush: usize,
}

impl ankh_ext2::BlockDevice for StopsMidSync {
    fn blocks(&self) -> u64 {
        self.disk.blocks()
    }

    fn read_blocks(&mut self, block: u64, buf: &mut [u8]) -> Result<(), ankh_proto::errno::Errno> {
        self.disk.read_blocks(block, buf)
    }

    fn write_blocks(&mut self, block: u64, data: &[u8]) -> Result<(), ankh_proto::errno::Errno> {
        if self.flushed {
            if self.writes_after_flush == 0 {
                return Err(ankh_proto::errno::EIO);
            }
            self.writes_after_flush -= 1;
        }
        self.disk.write_blocks(block, data)
    }

    fn flush(&mut self) -> Result<(), ankh_proto::errno::Errno> {
        self.flushed = true;
        self.disk.flush()
    }
}

#[test]
fn disk_check_replays_a_sync_cut_short_and_says_so() {
    use ankh_proto::vfs::{O_CREAT, O_WRONLY};

    let test_dir = TestDir::new("check");
    let dir = &test_dir.0;
    let path = dir.join("disk.img");
    // The new disk is a copy of the built-in root disk, which the VMM library reads
    // once the images are installed (as `ankh` does first thing).
    ankh_images::install();
    ankh_vmm::disk_image::DiskImage::persistent(&path).unwrap();
    let mut disk = StopsMidSync {
        disk: ankh_vmm::disk_image::FileDisk::open(&path).unwrap(),
        flushed: false,
        writes_after_flush: 1,
    };
    let mut fs = ankh_ext2::Ext2Fs::mount(&mut disk).unwrap();
    for i in 0..8 {
        let ino = fs
            .open(&mut disk, &format!("/data/cut{i}"), O_CREAT | O_WRONLY)
            .unwrap();
        fs.write(&mut disk, ino, 0, &[i; 10_000]).unwrap();
        fs.close(&mut disk, ino).unwrap();
    }
    assert!(fs.sync(&mut disk).is_err(), "the device stopped mid-sync");
    let (clean, report) = e2fsck(&path);
    assert!(
        !clean,
        "a sync cut short leaves what e2fsck rejects: {report}"
    );

    let image = path.to_str().unwrap();
    let (status, stdout, stderr) = ankh(&["disk", "check", image]);
    assert_eq!(status, 0, "stdout: {stdout}\nstderr: {stderr}");
    let said = |what: &str| assert!(stdout.contains(what), "{what:?} in {stdout}");
    said("journal: replayed transaction ");
    said("blocks were not in place yet");
    said("orphans: none");
    said("e2fsck -fn: clean");
    said(&format!("{image}: consistent"));
    said("files: ");
    assert!(e2fsck(&path).0);
    // The sync was committed: its files are there after the replay.
    let mut disk = ankh_vmm::disk_image::FileDisk::open(&path).unwrap();
    let mut fs = ankh_ext2::Ext2Fs::mount(&mut disk).unwrap();
    let ino = fs.resolve(&mut disk, "/data/cut7").unwrap();
    assert_eq!(fs.read(&mut disk, ino, 0, 20_000).unwrap(), [7; 10_000]);
    // A second check has nothing to do.
    let (status, stdout, _) = ankh(&["disk", "check", image]);
    assert_eq!(status, 0, "{stdout}");
    assert!(stdout.contains("journal: nothing to replay"), "{stdout}");
}

#[test]
fn disk_check_of_a_missing_or_foreign_file_is_one_line_and_status_2() {
    let test_dir = TestDir::new("check-bad");
    let dir = &test_dir.0;
    let missing = dir.join("missing.img");
    let (status, stdout, stderr) = ankh(&["disk", "check", missing.to_str().unwrap()]);
    assert_eq!(status, 2, "{stderr}");
    assert_eq!(
        (stdout.as_str(), stderr.lines().count()),
        ("", 1),
        "{stderr}"
    );
    assert!(stderr.contains("does not exist"), "{stderr}");

    let foreign = dir.join("foreign.img");
    std::fs::write(&foreign, vec![0x5a; 1 << 20]).unwrap();
    let (status, stdout, stderr) = ankh(&["disk", "check", foreign.to_str().unwrap()]);
    assert_eq!(status, 2, "{stderr}");
    assert_eq!(
        (stdout.as_str(), stderr.lines().count()),
        ("", 1),
        "{stderr}"
    );
    assert!(
        stderr.contains("not an ext2 file system made by Ankh"),
        "{stderr}"
    );
}

#[test]
fn a_reader_that_went_away_is_a_normal_end() {
    // `ankh images | head -0`, made certain: the pipe's reader is gone before ankh
    // writes its first line, so every write fails with EPIPE.
    for args in [&["images"][..], &["run-image", "hello"]] {
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let output = Command::new(env!("CARGO_BIN_EXE_ankh"))
            .args(args)
            .stdout(writer)
            .output()
            .expect("running ankh");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// `ankh campaign run`, `report` and `replay` end to end, small: faults in MM and blk on
/// the process substrate (the two whose profile takes seconds; all five take minutes).
#[test]
fn a_small_campaign_on_the_process_substrate_runs_reports_and_replays() {
    let test_dir = TestDir::new("cli-campaign");
    let dir = test_dir.0.join("out");
    let out = dir.to_str().expect("a UTF-8 path");
    // A process-substrate campaign of MM and blk into `out`, with `plan`.
    let run = |plan: &[&str]| {
        let head = [
            "campaign",
            "run",
            "--substrate",
            "process",
            "--servers",
            "mm,blk",
        ];
        let args: Vec<&str> = head
            .iter()
            .chain(plan)
            .chain(&["--out", out])
            .copied()
            .collect();
        ankh(&args)
    };
    let (status, stdout, stderr) = run(&[
        "--policy",
        "none,enhanced",
        "--faults",
        "5",
        "--types",
        "fail-stop",
        "--seed",
        "3",
        "--jobs",
        "2",
    ]);
    assert_eq!(status, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.contains("golden run: 252 passed, 0 failed"),
        "{stdout}"
    );
    let results = std::fs::read_to_string(dir.join("results.jsonl")).expect("results");
    assert_eq!(results.lines().count(), 10, "5 faults under 2 policies");

    // The tables count every experiment once per policy, activated or not.
    let (status, report, _) = ankh(&["campaign", "report", out]);
    assert_eq!(status, 0, "{report}");
    for policy in ["none", "enhanced"] {
        let row = report
            .lines()
            .find(|l| l.starts_with(&format!("| {policy} |")))
            .unwrap_or_else(|| panic!("no row for {policy}: {report}"));
        let cells: Vec<u64> = row
            .split('|')
            .filter_map(|cell| cell.trim().split(' ').next()?.parse().ok())
            .collect();
        // activated, pass, fail, shutdown, crash, timeout, not activated
        assert_eq!(cells.len(), 7, "{row}");
        assert_eq!(cells[0] + cells[6], 5, "{row}");
        assert_eq!(cells[1..6].iter().sum::<u64>(), cells[0], "{row}");
    }

    // The directory holds this campaign: another plan is refused in one line, and
    // nothing is run or written.
    let (status, _, stderr) = run(&["--seed", "4"]);
    assert_eq!(status, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("holds another campaign"), "{stderr}");
    let after = std::fs::read_to_string(dir.join("results.jsonl")).expect("results");
    assert_eq!(after, results);

    let (status, replayed, stderr) = ankh(&["campaign", "replay", out, "enhanced-0"]);
    assert_eq!(status, 0, "{stderr}");
    let summary = replayed
        .lines()
        .find(|l| l.starts_with("recorded: "))
        .expect("the recorded and replayed outcomes");
    let (recorded, replayed) = summary
        .strip_prefix("recorded: ")
        .and_then(|s| s.split_once("; replayed: "))
        .expect("recorded ...; replayed ...");
    // The same fault at the same site and hit count (the outcome of a run with
    // other domains' timing may differ; where the fault fired does not).
    let hits = |s: &str| s.split("hits ").nth(1).map(str::to_owned);
    assert_eq!(hits(recorded), hits(replayed), "{summary}");
}
