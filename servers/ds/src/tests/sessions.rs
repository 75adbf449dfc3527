//! Sessions (`DS_PROC_SPAWN`): a program's process tree shares one part of the store
//! and of the parked subscriptions.

use ankh_proto::ds::{
    entry_cost, OwnerExit, OWNER_BYTES_MAX, OWNER_ENTRIES_MAX, OWNER_SUBSCRIPTIONS_MAX,
    SESSION_BYTES_MAX, SESSION_ENTRIES_MAX, SESSION_SUBSCRIPTIONS_MAX, STORE_BYTES_MAX, VALUE_MAX,
};
use ankh_proto::errno::{Errno, EAGAIN, EEXIST, EINVAL, ENOSPC, EPERM};
use ankh_proto::opcode::{DS_PROC_EXIT, DS_PROC_SPAWN, DS_PUBLISH, DS_SUBSCRIBE};
use ankh_proto::pm::PROC_MAX;
use ankh_proto::server::{Handled, Reply};
use ankh_proto::vfs::ProcSpawn;
use ankh_proto::{wire, Pid};

use super::{kv, one, Fixture};
use crate::DataStore;

/// PM's domain id in these tests.
const PM: Pid = 2;
/// Init: PM never introduced it, so each process it spawns starts a session.
const INIT: Pid = 1;

/// A store that takes process notices from [`PM`] only.
fn fixture() -> Fixture {
    Fixture {
        ds: DataStore::new().with_process_manager(PM),
        ..Fixture::default()
    }
}

/// PM's `DS_PROC_SPAWN` of `child` by `parent`; its status.
fn spawn(f: &mut Fixture, child: Pid, parent: Pid) -> Errno {
    let record = ProcSpawn {
        child,
        parent,
        flags: 0,
        reserved: 0,
    };
    f.notice(PM, DS_PROC_SPAWN, &wire::bytes(&record))
}

/// PM's `DS_PROC_EXIT` of `pid` with `heir`; its status.
fn exit(f: &mut Fixture, pid: Pid, heir: Pid) -> Errno {
    f.notice(PM, DS_PROC_EXIT, &wire::bytes(&OwnerExit { pid, heir }))
}

/// `owner` publishes `key` = `value`; the status.
fn publish(f: &mut Fixture, owner: Pid, key: &str, value: &str) -> Errno {
    match f.send_from(owner, DS_PUBLISH, &kv(key, value)) {
        Handled::Reply(reply) => reply.status,
        Handled::Deferred => panic!("a publish was deferred"),
    }
}

/// The key `<owner>.<n>`, `n` on three digits (all keys of two-digit owners have
/// [`KEY_LEN`] bytes).
fn key(owner: Pid, n: usize) -> String {
    format!("{owner}.{n:03}")
}

/// The length of [`key`] for owners 10 to 99.
const KEY_LEN: usize = 6;

/// `owner` publishes `count` keys ([`key`]) of `value`; all must succeed.
fn publish_many(f: &mut Fixture, owner: Pid, count: usize, value: &str) {
    for n in 0..count {
        assert_eq!(publish(f, owner, &key(owner, n), value), 0, "{n}");
    }
}

/// `owner` publishes `value` until refused; the bytes it then holds.
fn fill(f: &mut Fixture, owner: Pid, value: &str) -> usize {
    for n in 0.. {
        match publish(f, owner, &key(owner, n), value) {
            0 => {}
            ENOSPC => break,
            other => panic!("publish {n} of {owner}: {other}"),
        }
    }
    f.ds.usage(owner).bytes
}

#[test]
fn a_session_is_refused_at_its_share_while_another_session_still_publishes() {
    let mut f = fixture();
    let big = "v".repeat(VALUE_MAX);
    // A program (10) spawns helpers that each publish until refused and stay alive.
    assert_eq!(spawn(&mut f, 10, INIT), 0);
    let mut helpers = Vec::new();
    let mut held = 0;
    loop {
        let helper = 11 + Pid::try_from(helpers.len()).unwrap();
        assert_eq!(spawn(&mut f, helper, 10), 0);
        helpers.push(helper);
        let taken = fill(&mut f, helper, &big);
        held += taken;
        if taken + entry_cost(KEY_LEN, VALUE_MAX) <= OWNER_BYTES_MAX {
            break; // refused below its own quota: by the session's share
        }
        assert!(
            helpers.len() < STORE_BYTES_MAX / OWNER_BYTES_MAX,
            "no share"
        );
    }
    assert_eq!(f.ds.session_usage(10).bytes, held);
    assert_eq!(f.ds.session_usage(helpers[0]).bytes, held);
    assert!(held <= SESSION_BYTES_MAX);
    assert!(
        held + entry_cost(KEY_LEN, VALUE_MAX) > SESSION_BYTES_MAX,
        "{held}"
    );
    assert_eq!(helpers.len(), SESSION_BYTES_MAX / OWNER_BYTES_MAX + 1);
    assert!(f.ds.total_usage().bytes + OWNER_BYTES_MAX <= STORE_BYTES_MAX);
    // Another program's session still publishes, up to its own share as well.
    assert_eq!(spawn(&mut f, 30, INIT), 0);
    assert_eq!(publish(&mut f, 30, &key(30, 0), &big), 0);
    assert_eq!(f.ds.session_usage(30).entries, 1);
    // A key of the full session may still be overwritten with a value no larger.
    assert_eq!(publish(&mut f, helpers[0], &key(helpers[0], 0), "small"), 0);
    // A helper's end passes its keys to its parent, in the same session: the
    // session is charged what it was.
    let before = f.ds.session_usage(10);
    let keys = f.ds.usage(helpers[1]).entries;
    assert_eq!(exit(&mut f, helpers[1], 10), 0);
    assert_eq!(f.ds.usage(10).entries, keys);
    assert_eq!(f.ds.session_usage(10), before);
}

#[test]
fn keys_are_bounded_per_session_too() {
    let mut f = fixture();
    assert_eq!(spawn(&mut f, 10, INIT), 0);
    assert_eq!(spawn(&mut f, 11, 10), 0);
    assert_eq!(spawn(&mut f, 12, 11), 0);
    publish_many(&mut f, 10, OWNER_ENTRIES_MAX, "x");
    publish_many(&mut f, 12, SESSION_ENTRIES_MAX - OWNER_ENTRIES_MAX, "x");
    assert_eq!(f.ds.session_usage(11).entries, SESSION_ENTRIES_MAX);
    assert_eq!(
        publish(&mut f, 11, "11.0", "x"),
        ENOSPC,
        "the session's share"
    );
    assert_eq!(f.ds.usage(11).entries, 0);
    // A process init started outside the session is not charged for it.
    assert_eq!(publish(&mut f, 20, "20.0", "x"), 0);
}

#[test]
fn orphans_stay_in_their_session() {
    let mut f = fixture();
    assert_eq!(spawn(&mut f, 10, INIT), 0);
    assert_eq!(spawn(&mut f, 11, 10), 0);
    assert_eq!(spawn(&mut f, 12, 11), 0);
    assert_eq!(exit(&mut f, 11, 10), 0);
    assert_eq!(publish(&mut f, 12, "12.0", "x"), 0);
    assert_eq!(f.ds.session_usage(10).entries, 1);
    assert_eq!(f.ds.known_processes(), 2);
}

#[test]
fn keys_passed_to_an_heir_in_another_session_stay_within_that_session_s_share() {
    let mut f = fixture();
    // Session 40: 41 and 42 hold all but one key of its share; 40 holds nothing.
    for (child, parent) in [(40, INIT), (41, 40), (42, 40)] {
        assert_eq!(spawn(&mut f, child, parent), 0);
    }
    publish_many(&mut f, 41, OWNER_ENTRIES_MAX, "x");
    publish_many(&mut f, 42, SESSION_ENTRIES_MAX - OWNER_ENTRIES_MAX - 1, "x");
    // Session 50's 51 ends and its heir is 40: 40 has room, its session one key.
    assert_eq!(spawn(&mut f, 50, INIT), 0);
    assert_eq!(spawn(&mut f, 51, 50), 0);
    for key in ["f.0", "f.1", "f.2"] {
        assert_eq!(publish(&mut f, 51, key, "r"), 0);
    }
    assert_eq!(f.ds.session_usage(50).entries, 3);
    assert_eq!(exit(&mut f, 51, 40), 0);
    assert_eq!(f.ds.owner("f.0"), Some(40));
    assert_eq!((f.ds.get("f.1"), f.ds.get("f.2")), (None, None));
    assert_eq!(f.ds.session_usage(50).entries, 0);
    assert_eq!(f.ds.session_usage(40).entries, SESSION_ENTRIES_MAX);
    // Within the session keys pass at its share: they were charged to it already.
    assert_eq!(exit(&mut f, 42, 40), 0);
    assert_eq!(
        f.ds.usage(40).entries,
        SESSION_ENTRIES_MAX - OWNER_ENTRIES_MAX
    );
    assert_eq!(f.ds.session_usage(40).entries, SESSION_ENTRIES_MAX);
    // 40's own quota is full now: 41's keys are deleted, and its share freed.
    assert_eq!(f.ds.usage(40).entries, OWNER_ENTRIES_MAX);
    assert_eq!(exit(&mut f, 41, 40), 0);
    assert_eq!(f.ds.session_usage(40).entries, OWNER_ENTRIES_MAX);
    assert_eq!(f.ds.total_usage().entries, f.ds.len());
    assert_eq!(f.ds.len(), OWNER_ENTRIES_MAX);
}

#[test]
fn the_session_map_holds_at_most_pm_s_process_count() {
    let mut f = fixture();
    let children = 100..100 + Pid::try_from(PROC_MAX).unwrap();
    for child in children.clone() {
        assert_eq!(spawn(&mut f, child, INIT), 0);
    }
    assert_eq!(f.ds.known_processes(), PROC_MAX);
    assert_eq!(spawn(&mut f, 500, INIT), EAGAIN);
    assert_eq!(
        spawn(&mut f, 100, INIT),
        0,
        "a known child takes no new entry"
    );
    assert_eq!(f.ds.known_processes(), PROC_MAX);
    // An end frees its entry (a second report of it changes nothing).
    assert_eq!(exit(&mut f, 100, INIT), 0);
    assert_eq!(exit(&mut f, 100, INIT), 0);
    assert_eq!(f.ds.known_processes(), PROC_MAX - 1);
    assert_eq!(spawn(&mut f, 500, 101), 0);
    assert_eq!(f.ds.known_processes(), PROC_MAX);
}

#[test]
fn spawn_notices_come_from_pm_only_and_must_be_well_formed() {
    let mut f = fixture();
    let record = |child, parent| {
        wire::bytes(&ProcSpawn {
            child,
            parent,
            flags: 0,
            reserved: 0,
        })
    };
    assert_eq!(f.notice(7, DS_PROC_SPAWN, &record(8, 7)), EPERM);
    assert_eq!(
        f.notice(
            7,
            DS_PROC_EXIT,
            &wire::bytes(&OwnerExit { pid: 8, heir: 7 })
        ),
        EPERM
    );
    assert_eq!(f.notice(PM, DS_PROC_SPAWN, &record(PM, 7)), EPERM);
    assert_eq!(f.notice(PM, DS_PROC_SPAWN, &[0; 4]), EINVAL);
    assert_eq!(f.notice(PM, DS_PROC_SPAWN, &record(8, 8)), EINVAL);
    assert_eq!(f.notice(PM, DS_PROC_SPAWN, &record(0, 7)), EINVAL);
    assert_eq!(f.ds.known_processes(), 0);
    // A process that runs already keeps the session it is charged to.
    assert_eq!(publish(&mut f, 8, "8.0", "x"), 0);
    assert_eq!(spawn(&mut f, 8, 7), EEXIST);
    assert_eq!(f.ds.known_processes(), 0);
    // Without PM's id (no peer to learn it from) any other sender is accepted.
    let mut open = Fixture::default();
    assert_eq!(open.notice(7, DS_PROC_SPAWN, &record(8, 7)), 0);
    assert_eq!(open.ds.known_processes(), 1);
}

#[test]
fn a_session_parks_at_most_its_share_of_subscriptions() {
    let mut f = fixture();
    assert_eq!(spawn(&mut f, 10, INIT), 0);
    let owners = SESSION_SUBSCRIPTIONS_MAX / OWNER_SUBSCRIPTIONS_MAX;
    let helpers = 11..11 + Pid::try_from(owners).unwrap();
    for helper in helpers.clone() {
        assert_eq!(spawn(&mut f, helper, 10), 0);
        for _ in 0..OWNER_SUBSCRIPTIONS_MAX {
            assert_eq!(
                f.send_from(helper, DS_SUBSCRIBE, &one("a")),
                Handled::Deferred
            );
        }
    }
    assert_eq!(f.ds.subscriptions(), SESSION_SUBSCRIPTIONS_MAX);
    // The program itself has parked none, but its session has its share.
    assert_eq!(
        f.send_from(10, DS_SUBSCRIBE, &one("a")),
        Reply::err(EAGAIN).into()
    );
    // Another program's session still subscribes.
    assert_eq!(spawn(&mut f, 30, INIT), 0);
    assert_eq!(f.send_from(30, DS_SUBSCRIBE, &one("a")), Handled::Deferred);
    // An end frees its part of the share.
    assert_eq!(exit(&mut f, helpers.start, 10), 0);
    assert_eq!(f.send_from(10, DS_SUBSCRIBE, &one("a")), Handled::Deferred);
}
