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
    let result = stdout
        .lines()
        .find_map(|l| l.strip_prefix("[suite] "))
        .expect("the suite's result line");
    assert!(result.ends_with(" passed, 0 failed"), "{result}");
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
    let (status, _, stderr) = ankh(&["run-image", "no-such-image"]);
    assert_eq!(status, 4);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
}

#[test]
fn bad_input_gets_one_line_and_status_2() {
    let dir = std::env::temp_dir().join(format!("ankh-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
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

#[test]
fn demo_survives_hot_kills_of_every_server() {
    let (status, stdout, stderr) = ankh(&["demo"]);
    assert_eq!(status, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.contains("system: survived, every server still serving"),
        "{stdout}"
    );
    for server in ["ds", "vfs", "pm"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("recovery: {server} request "))),
            "{server} was killed and recovered: {stdout}"
        );
    }
    assert!(
        stdout.contains("error-virtualized requests answered ERESTART"),
        "{stdout}"
    );
}
