//! The control socket as a client sees it: requests answered on one loop, bounds on
//! lines and clients, the path refused unless free or stale, the file removed at the
//! end.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};

use vmm_sys_util::tempdir::TempDir;

use super::*;
use crate::system::control::MAX_LINE;

fn temp_dir() -> TempDir {
    TempDir::new_with_prefix("/tmp/ankh-control-").expect("a temporary directory")
}

fn start(path: &Path) -> Result<ControlServer, ControlSocketError> {
    let hub = Arc::new(ControlHub::new(["ds", "vfs"]));
    ControlServer::start(hub, path, ExitSignals::Leave)
}

/// Sends `line` and reads one reply line.
fn ask(client: &mut BufReader<UnixStream>, line: &str) -> serde_json::Value {
    writeln!(client.get_mut(), "{line}").unwrap();
    let mut reply = String::new();
    client.read_line(&mut reply).unwrap();
    serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{e}: {reply:?}"))
}

fn connect(path: &Path) -> BufReader<UnixStream> {
    BufReader::new(UnixStream::connect(path).unwrap())
}

#[test]
fn clients_are_answered_on_one_loop_and_typed_errors_keep_them_open() {
    let dir = temp_dir();
    let path = dir.as_path().join("control.sock");
    let server = start(&path).unwrap();
    let mut first = connect(&path);
    let mut second = connect(&path);
    assert_eq!(
        ask(&mut first, r#"{"cmd":"status"}"#)["domains"][1]["name"],
        "vfs"
    );
    let bad = ask(
        &mut second,
        r#"{"cmd":"kill","domain":"ds","when":"later"}"#,
    );
    assert_eq!(bad["ok"], false);
    assert!(
        bad["error"].as_str().unwrap().starts_with("bad request: "),
        "{bad}"
    );
    assert_eq!(
        ask(&mut second, r#"{"cmd":"kill","domain":"ds"}"#),
        serde_json::json!({ "ok": true })
    );
    assert_eq!(ask(&mut first, r#"{"cmd":"stats"}"#)["ok"], false);
    assert_eq!(ask(&mut first, r#"{"cmd":"status"}"#)["ok"], true);
    drop(server);
    assert!(!path.exists(), "the socket file is removed");
    let mut rest = String::new();
    first.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "the connection was closed");
}

#[test]
fn a_line_past_the_bound_is_refused_and_its_connection_closed() {
    let dir = temp_dir();
    let path = dir.as_path().join("control.sock");
    let _server = start(&path).unwrap();
    let mut client = UnixStream::connect(&path).unwrap();
    // Never a newline: the server stops reading past the bound.
    let line = vec![b' '; MAX_LINE + 1];
    client.write_all(&line).unwrap();
    let mut reply = String::new();
    client.read_to_string(&mut reply).unwrap();
    assert_eq!(reply.lines().count(), 1, "{reply}");
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["ok"], false);
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("longer than 65536 bytes"),
        "{reply}"
    );
    // A line of exactly the bound is served.
    let mut client = connect(&path);
    let mut padded = r#"{"cmd":"status"}"#.to_owned();
    padded.extend(std::iter::repeat_n(' ', MAX_LINE - padded.len()));
    assert_eq!(ask(&mut client, &padded)["ok"], true);
}

#[test]
fn clients_past_the_bound_are_told_and_closed() {
    let dir = temp_dir();
    let path = dir.as_path().join("control.sock");
    let _server = start(&path).unwrap();
    let mut served: Vec<_> = (0..MAX_CONNECTIONS).map(|_| connect(&path)).collect();
    for client in &mut served {
        assert_eq!(ask(client, r#"{"cmd":"status"}"#)["ok"], true);
    }
    let mut extra = UnixStream::connect(&path).unwrap();
    let mut reply = String::new();
    extra.read_to_string(&mut reply).unwrap();
    assert!(reply.contains("at most 16 clients"), "{reply}");
    // One leaves: the next one is served.
    served.pop();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    // The loop may see the new client before the departure: then it is refused too.
    loop {
        let mut next = UnixStream::connect(&path).unwrap();
        let _ = next.write_all(b"{\"cmd\":\"status\"}\n");
        let mut reply = String::new();
        BufReader::new(next).read_line(&mut reply).unwrap();
        if reply.starts_with("{\"ok\":true") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{reply}");
    }
}

#[test]
fn a_path_that_is_not_a_stale_socket_is_refused_and_left_alone() {
    let dir = temp_dir();
    let file = dir.as_path().join("notes.txt");
    std::fs::write(&file, "keep me").unwrap();
    let error = start(&file).unwrap_err();
    assert!(matches!(
        error,
        ControlSocketError::NotASocket {
            what: "a regular file",
            ..
        }
    ));
    assert!(error.is_usage());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");

    let error = start(dir.as_path()).unwrap_err();
    assert!(matches!(
        error,
        ControlSocketError::NotASocket {
            what: "a directory",
            ..
        }
    ));
    assert!(dir.as_path().is_dir());

    let live = dir.as_path().join("live.sock");
    let listener = UnixListener::bind(&live).unwrap();
    let error = start(&live).unwrap_err();
    assert!(matches!(error, ControlSocketError::InUse { .. }), "{error}");
    assert!(error.is_usage());
    // Still the other process's socket.
    drop(UnixStream::connect(&live).unwrap());
    assert!(listener.accept().is_ok());

    let error = start(&dir.as_path().join("no/such/dir.sock")).unwrap_err();
    assert!(matches!(error, ControlSocketError::Bind { .. }), "{error}");
    assert!(error.is_usage());
}

#[test]
fn a_stale_socket_is_replaced_and_a_file_put_there_since_is_not_removed() {
    let dir = temp_dir();
    let path = dir.as_path().join("control.sock");
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists(), "a stale socket: nobody listens");
    let server = start(&path).unwrap();
    assert_eq!(ask(&mut connect(&path), r#"{"cmd":"status"}"#)["ok"], true);
    drop(server);
    assert!(!path.exists());

    let server = start(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, "someone else's").unwrap();
    drop(server);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "someone else's");
}

#[test]
fn an_idle_client_is_told_and_closed() {
    let dir = temp_dir();
    let path = dir.as_path().join("control.sock");
    let hub = Arc::new(ControlHub::new(["ds"]));
    let idle_limit = std::time::Duration::from_millis(100);
    let _server = ControlServer::open(hub, &path, None, idle_limit).unwrap();
    let mut client = connect(&path);
    assert_eq!(ask(&mut client, r#"{"cmd":"status"}"#)["ok"], true);
    // Bounds the test if the server never closes it.
    let limit = Some(std::time::Duration::from_secs(30));
    client.get_ref().set_read_timeout(limit).unwrap();
    let mut rest = String::new();
    client.read_to_string(&mut rest).unwrap();
    assert_eq!(rest.lines().count(), 1, "{rest}");
    assert!(rest.contains("idle for more than 0.1 s"), "{rest}");
}
