//! `DS_SUBSCRIBE` and [`crate::DataStore::drop_process`].

use ankh_proto::ds::{OwnerExit, KEY_MAX, OWNER_SUBSCRIPTIONS_MAX, SUBSCRIPTIONS_MAX};
use ankh_proto::errno::{EAGAIN, EINVAL, ENAMETOOLONG, ENOENT, ESRCH};
use ankh_proto::opcode::{DS_DELETE, DS_PROC_EXIT, DS_PUBLISH, DS_RETRIEVE, DS_SUBSCRIBE};
use ankh_proto::server::{Handled, Reply};
use ankh_proto::wire;

use super::{kv, one, Fixture};

/// Parks a subscription from `source`; returns its request id.
fn subscribe(f: &mut Fixture, source: u32, prefix: &str) -> u64 {
    assert_eq!(
        f.send_from(source, DS_SUBSCRIBE, &one(prefix)),
        Handled::Deferred
    );
    f.last_id()
}

#[test]
fn a_publish_fires_matching_subscriptions_once() {
    let mut f = Fixture::default();
    let vfs = subscribe(&mut f, 3, "vfs.");
    let pm = subscribe(&mut f, 4, "pm.");
    assert_eq!(f.ds.subscriptions(), 2);
    assert_eq!(f.status(DS_PUBLISH, &kv("vfs.open-files", "2")), 0);
    assert_eq!(f.kernel.replies.len(), 1);
    let (id, reply) = &f.kernel.replies[0];
    assert_eq!(*id, vfs);
    assert_eq!(
        (reply.status, reply.bulk.as_slice()),
        (0, &b"vfs.open-files\0"[..])
    );
    // Fired once: another publish answers nothing more for it.
    assert_eq!(f.status(DS_PUBLISH, &kv("vfs.open-files", "3")), 0);
    assert_eq!(f.kernel.replies.len(), 1);
    assert_eq!(f.ds.subscriptions(), 1);
    assert_eq!(f.status(DS_PUBLISH, &kv("pm.processes", "1")), 0);
    assert_eq!(f.kernel.replies[1].0, pm);
    assert_eq!(f.ds.subscriptions(), 0);
}

#[test]
fn a_delete_fires_and_an_empty_prefix_matches_everything() {
    let mut f = Fixture::default();
    assert_eq!(f.status(DS_PUBLISH, &kv("a.b", "1")), 0);
    let all = subscribe(&mut f, 3, "");
    let exact = subscribe(&mut f, 4, "a.b");
    let other = subscribe(&mut f, 5, "a.c");
    assert_eq!(f.status(DS_DELETE, &one("a.b")), 0);
    let ids: Vec<u64> = f.kernel.replies.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [all, exact], "fired oldest first");
    assert!(f.kernel.replies.iter().all(|(_, r)| r.bulk == b"a.b\0"));
    assert_eq!(f.ds.subscriptions(), 1);
    // A failed delete or publish fires nothing.
    assert_eq!(f.status(DS_DELETE, &one("a.c")), ENOENT);
    assert_eq!(f.status(DS_PUBLISH, b"a.c\0"), EINVAL);
    assert_eq!(f.kernel.replies.len(), 2);
    assert_eq!(f.status(DS_PUBLISH, &kv("a.c", "")), 0);
    assert_eq!(f.kernel.replies[2].0, other);
}

#[test]
fn at_most_subscriptions_max_are_parked() {
    let mut f = Fixture::default();
    for n in 0..SUBSCRIPTIONS_MAX {
        subscribe(&mut f, 10 + u32::try_from(n % 8).unwrap(), "x");
    }
    assert_eq!(f.status(DS_SUBSCRIBE, &one("x")), EAGAIN);
    assert_eq!(f.status(DS_PUBLISH, &kv("x", "1")), 0);
    assert_eq!(f.kernel.replies.len(), SUBSCRIPTIONS_MAX);
    assert_eq!(f.ds.subscriptions(), 0);
    subscribe(&mut f, 3, "x");
}

#[test]
fn one_owner_parks_at_most_its_share_of_subscriptions() {
    let mut f = Fixture::default();
    for _ in 0..OWNER_SUBSCRIPTIONS_MAX {
        subscribe(&mut f, 3, "x");
    }
    let refused = f.send_from(3, DS_SUBSCRIBE, &one("x"));
    assert_eq!(refused, Handled::Reply(Reply::err(EAGAIN)));
    // Others still may.
    subscribe(&mut f, 4, "x");
    assert_eq!(f.ds.subscriptions(), OWNER_SUBSCRIPTIONS_MAX + 1);
}

#[test]
fn subscribe_errors() {
    let mut f = Fixture::default();
    assert_eq!(f.status(DS_SUBSCRIBE, b""), EINVAL);
    assert_eq!(f.status(DS_SUBSCRIBE, b"a\0b\0"), EINVAL);
    let too_long = "k".repeat(KEY_MAX + 1);
    assert_eq!(f.status(DS_SUBSCRIBE, &one(&too_long)), ENAMETOOLONG);
    // A one-way message cannot be parked.
    let handled = f.send_with_id(3, DS_SUBSCRIBE, 0, &one("x"));
    assert_eq!(
        handled,
        Handled::Reply(ankh_proto::server::Reply::err(EINVAL))
    );
    assert_eq!(f.ds.subscriptions(), 0);
}

#[test]
fn drop_process_ends_only_that_process_s_subscriptions() {
    let mut f = Fixture::default();
    let a = subscribe(&mut f, 3, "a");
    let kept = subscribe(&mut f, 4, "a");
    let b = subscribe(&mut f, 3, "b");
    assert_eq!(f.ds.drop_process(3, &mut f.kernel), 2);
    assert_eq!(
        f.kernel.replies,
        [(a, Reply::err(ESRCH)), (b, Reply::err(ESRCH))]
    );
    assert_eq!(f.ds.drop_process(3, &mut f.kernel), 0);
    assert_eq!(f.ds.subscriptions(), 1);
    f.kernel.replies.clear();
    assert_eq!(f.status(DS_PUBLISH, &kv("a", "1")), 0);
    assert_eq!(f.status(DS_PUBLISH, &kv("b", "1")), 0);
    let ids: Vec<u64> = f.kernel.replies.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [kept]);
    assert!(f.kernel.calls.is_empty());
}

/// `DS_PROC_EXIT` for `pid` with `heir`, sent as PM would; its status.
fn proc_exit(f: &mut Fixture, pid: u32, heir: u32) -> ankh_proto::errno::Errno {
    let payload = wire::bytes(&OwnerExit { pid, heir });
    let request = ankh_proto::server::Request {
        source: 4,
        opcode: DS_PROC_EXIT,
        request_id: 1000,
        payload: &payload,
        bulk: &[],
    };
    match ankh_proto::server::Server::handle(&mut f.ds, &request, &mut f.kernel) {
        Handled::Reply(reply) => reply.status,
        Handled::Deferred => panic!("deferred"),
    }
}

#[test]
fn an_exit_frees_the_subscriptions_of_the_process() {
    let mut f = Fixture::default();
    let mut parked = Vec::new();
    for _ in 0..OWNER_SUBSCRIPTIONS_MAX {
        parked.push(subscribe(&mut f, 3, "a"));
    }
    let kept = subscribe(&mut f, 4, "a");
    assert_eq!(proc_exit(&mut f, 3, 1), 0);
    let answered: Vec<(u64, Reply)> = parked.iter().map(|&id| (id, Reply::err(ESRCH))).collect();
    assert_eq!(f.kernel.replies, answered);
    assert_eq!(f.ds.subscriptions(), 1);
    // The slots are free again.
    subscribe(&mut f, 5, "a");
    f.kernel.replies.clear();
    assert_eq!(f.status(DS_PUBLISH, &kv("a", "1")), 0);
    let ids: Vec<u64> = f.kernel.replies.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [kept, f.last_id() - 1]);
}

#[test]
fn an_exit_hands_values_to_the_heir_within_its_quota() {
    use ankh_proto::ds::OWNER_ENTRIES_MAX;
    let mut f = Fixture::default();
    // The heir (pid 5) has room for two more keys only.
    for i in 0..OWNER_ENTRIES_MAX - 2 {
        let key = format!("heir.{i}");
        assert_eq!(
            f.send_from(5, DS_PUBLISH, &kv(&key, "x")),
            Reply::ok(Vec::new()).into()
        );
    }
    for key in ["child.a", "child.b", "child.c"] {
        assert_eq!(
            f.send_from(9, DS_PUBLISH, &kv(key, "r")),
            Reply::ok(Vec::new()).into()
        );
    }
    let watcher = subscribe(&mut f, 6, "child.");
    assert_eq!(proc_exit(&mut f, 9, 5), 0);
    assert_eq!(f.ds.owner("child.a"), Some(5));
    assert_eq!(f.ds.owner("child.b"), Some(5));
    assert_eq!(f.ds.get("child.c"), None, "over the heir's quota: deleted");
    assert_eq!(
        f.kernel.replies,
        [(watcher, Reply::ok_with_bulk(Vec::new(), one("child.c")))]
    );
    assert_eq!(f.ds.usage(9).entries, 0);
    assert_eq!(f.ds.usage(5).entries, OWNER_ENTRIES_MAX);
    assert_eq!(f.ds.total_usage().entries, f.ds.len());
}

#[test]
fn an_exit_without_heir_deletes_the_values() {
    let mut f = Fixture::default();
    assert_eq!(
        f.send_from(9, DS_PUBLISH, &kv("mine", "1")),
        Reply::ok(Vec::new()).into()
    );
    assert_eq!(
        f.send_from(8, DS_PUBLISH, &kv("theirs", "1")),
        Reply::ok(Vec::new()).into()
    );
    assert_eq!(proc_exit(&mut f, 9, 0), 0);
    assert_eq!(f.status(DS_RETRIEVE, &one("mine")), ENOENT);
    assert_eq!(f.ds.get("theirs"), Some("1"));
    assert_eq!(f.ds.total_usage().entries, 1);
    assert_eq!(
        proc_exit(&mut f, 9, 0),
        0,
        "a second report changes nothing"
    );
    let short = ankh_proto::server::Request {
        source: 4,
        opcode: DS_PROC_EXIT,
        request_id: 1,
        payload: &[0; 4],
        bulk: &[],
    };
    assert_eq!(
        ankh_proto::server::Server::handle(&mut f.ds, &short, &mut f.kernel),
        Handled::Reply(Reply::err(EINVAL))
    );
}
