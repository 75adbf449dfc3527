//! `DS_PUBLISH`, `DS_RETRIEVE`, `DS_DELETE`, `DS_LIST` and unknown opcodes.

use ankh_proto::ds::{
    entry_cost, ENTRIES_MAX, KEY_MAX, OWNER_BYTES_MAX, OWNER_ENTRIES_MAX, STORE_BYTES_MAX,
    VALUE_MAX,
};
use ankh_proto::errno::{E2BIG, EINVAL, ENAMETOOLONG, ENOENT, ENOSPC, ENOSYS};
use ankh_proto::opcode::{DS_DELETE, DS_LIST, DS_PUBLISH, DS_RETRIEVE, PM_GETPID};
use ankh_proto::wire;

use ankh_proto::server::Reply;

use super::{kv, one, Fixture};

#[test]
fn publish_then_retrieve_and_overwrite() {
    let mut f = Fixture::default();
    let reply = f.ask(DS_PUBLISH, &kv("vfs.open-files", "3"));
    assert_eq!((reply.status, reply.payload.len()), (0, 0));
    let reply = f.ask(DS_RETRIEVE, &one("vfs.open-files"));
    assert_eq!(reply.status, 0);
    assert_eq!(reply.bulk, one("3"));
    assert_eq!(f.status(DS_PUBLISH, &kv("vfs.open-files", "4")), 0);
    assert_eq!(f.ds.get("vfs.open-files"), Some("4"));
    assert_eq!(f.ds.len(), 1);
    assert!(f.kernel.calls.is_empty() && f.kernel.replies.is_empty());
}

#[test]
fn empty_values_are_values() {
    let mut f = Fixture::default();
    assert!(f.ds.is_empty());
    assert_eq!(f.status(DS_PUBLISH, &kv("k", "")), 0);
    assert_eq!(f.ask(DS_RETRIEVE, &one("k")).bulk, one(""));
}

#[test]
fn malformed_publications_are_einval() {
    let mut f = Fixture::default();
    let lists: [&[u8]; 7] = [
        b"",
        b"k\0",
        b"k\0v",
        b"k\0v\0x\0",
        b"k\0\xff\0",
        b"\0v\0",
        b"kv",
    ];
    for bulk in lists {
        assert_eq!(f.status(DS_PUBLISH, bulk), EINVAL, "{bulk:?}");
    }
    assert!(f.ds.is_empty());
}

#[test]
fn publish_bounds_keys_and_values() {
    let mut f = Fixture::default();
    let long_key = "k".repeat(KEY_MAX);
    assert_eq!(f.status(DS_PUBLISH, &kv(&long_key, "v")), 0);
    let too_long_key = "k".repeat(KEY_MAX + 1);
    assert_eq!(f.status(DS_PUBLISH, &kv(&too_long_key, "v")), ENAMETOOLONG);
    let long_value = "v".repeat(VALUE_MAX);
    assert_eq!(f.status(DS_PUBLISH, &kv("a", &long_value)), 0);
    let too_long_value = "v".repeat(VALUE_MAX + 1);
    assert_eq!(f.status(DS_PUBLISH, &kv("b", &too_long_value)), E2BIG);
    assert_eq!(f.ds.len(), 2);
    assert_eq!(f.ds.get("a").map(str::len), Some(VALUE_MAX));
}

#[test]
fn a_full_store_refuses_new_keys_but_updates_old_ones() {
    let mut f = Fixture::default();
    let owners = ENTRIES_MAX / OWNER_ENTRIES_MAX;
    for i in 0..ENTRIES_MAX {
        let owner = 10 + u32::try_from(i % owners).unwrap();
        let handled = f.send_from(owner, DS_PUBLISH, &kv(&key(i), "x"));
        assert_eq!(handled, Reply::ok(Vec::new()).into(), "key {i}");
    }
    assert_eq!(f.status(DS_PUBLISH, &kv("new", "x")), ENOSPC);
    assert_eq!(f.status(DS_PUBLISH, &kv(&key(0), "y")), 0);
    assert_eq!(f.ds.get(&key(0)), Some("y"));
    assert_eq!(
        f.ds.owner(&key(0)),
        Some(7),
        "the publisher owns what it overwrites"
    );
    assert_eq!(f.status(DS_DELETE, &one(&key(1))), 0);
    assert_eq!(f.status(DS_PUBLISH, &kv("new", "x")), 0);
    assert_eq!(f.ds.len(), ENTRIES_MAX);
    assert_eq!(f.ds.total_usage().entries, ENTRIES_MAX);
}

#[test]
fn one_owner_gets_enospc_at_its_quota_and_others_keep_publishing() {
    let mut f = Fixture::default();
    for i in 0..OWNER_ENTRIES_MAX {
        assert_eq!(f.status(DS_PUBLISH, &kv(&key(i), "x")), 0, "key {i}");
    }
    assert_eq!(f.status(DS_PUBLISH, &kv("one.more", "x")), ENOSPC);
    assert_eq!(f.ds.usage(7).entries, OWNER_ENTRIES_MAX);
    // Overwriting its own key stays within the quota.
    assert_eq!(f.status(DS_PUBLISH, &kv(&key(0), "y")), 0);
    let other = f.send_from(8, DS_PUBLISH, &kv("other", "x"));
    assert_eq!(other, Reply::ok(Vec::new()).into());
    assert_eq!(f.ds.usage(8).entries, 1);
}

#[test]
fn bytes_are_bounded_per_owner_and_for_the_store() {
    let mut f = Fixture::default();
    let big = "v".repeat(VALUE_MAX);
    let cost = entry_cost(key(0).len(), VALUE_MAX);
    let per_owner = OWNER_BYTES_MAX / cost;
    let publish = |f: &mut Fixture, owner: u32, i: usize| match f.send_from(
        owner,
        DS_PUBLISH,
        &kv(&key(i), &big),
    ) {
        ankh_proto::server::Handled::Reply(reply) => reply.status,
        other => panic!("{other:?}"),
    };
    for i in 0..per_owner {
        assert_eq!(publish(&mut f, 20, i), 0);
    }
    assert_eq!(publish(&mut f, 20, per_owner), ENOSPC, "owner 20 is full");
    assert!(f.ds.usage(20).bytes <= OWNER_BYTES_MAX);
    // Other owners fill the rest of the store, then it is full for everyone.
    let mut i = per_owner;
    let mut owner = 21;
    while f.ds.total_usage().bytes + cost <= STORE_BYTES_MAX {
        if f.ds.usage(owner).bytes + cost > OWNER_BYTES_MAX {
            owner += 1;
        }
        assert_eq!(publish(&mut f, owner, i), 0);
        i += 1;
    }
    assert_eq!(publish(&mut f, owner + 1, i), ENOSPC, "the store is full");
    assert!(f.ds.total_usage().bytes <= STORE_BYTES_MAX);
    // A delete gives the bytes back to whoever owned the key.
    assert_eq!(f.status(DS_DELETE, &one(&key(0))), 0);
    assert_eq!(f.ds.usage(20).entries, per_owner - 1);
    assert_eq!(publish(&mut f, owner + 1, i), 0);
}

fn key(i: usize) -> String {
    let mut key = String::from("key.");
    key.push_str(&i.to_string());
    key
}

#[test]
fn retrieve_errors() {
    let mut f = Fixture::default();
    assert_eq!(f.status(DS_RETRIEVE, &one("missing")), ENOENT);
    assert_eq!(f.status(DS_RETRIEVE, b""), EINVAL);
    assert_eq!(f.status(DS_RETRIEVE, &one("")), EINVAL);
    assert_eq!(f.status(DS_RETRIEVE, &kv("a", "b")), EINVAL);
    assert_eq!(f.status(DS_RETRIEVE, b"a"), EINVAL);
    let too_long = "k".repeat(KEY_MAX + 1);
    assert_eq!(f.status(DS_RETRIEVE, &one(&too_long)), ENAMETOOLONG);
}

#[test]
fn delete_removes_once() {
    let mut f = Fixture::default();
    assert_eq!(f.status(DS_PUBLISH, &kv("a", "1")), 0);
    assert_eq!(f.status(DS_DELETE, &one("a")), 0);
    assert_eq!(f.status(DS_DELETE, &one("a")), ENOENT);
    assert_eq!(f.status(DS_RETRIEVE, &one("a")), ENOENT);
    assert_eq!(f.status(DS_DELETE, b"a\0b\0"), EINVAL);
    assert_eq!(f.status(DS_DELETE, &one("")), EINVAL);
    let too_long = "k".repeat(KEY_MAX + 1);
    assert_eq!(f.status(DS_DELETE, &one(&too_long)), ENAMETOOLONG);
}

#[test]
fn list_returns_sorted_keys_with_the_prefix() {
    let mut f = Fixture::default();
    for k in ["vfs.b", "pm.processes", "vfs.a", "vfs", "vfsx", "a"] {
        assert_eq!(f.status(DS_PUBLISH, &kv(k, "1")), 0);
    }
    let reply = f.ask(DS_LIST, &one("vfs."));
    assert_eq!(reply.status, 0);
    assert_eq!(wire::split(&reply.bulk).unwrap(), ["vfs.a", "vfs.b"]);
    let all = f.ask(DS_LIST, &one("")).bulk;
    assert_eq!(
        wire::split(&all).unwrap(),
        ["a", "pm.processes", "vfs", "vfs.a", "vfs.b", "vfsx"]
    );
    assert_eq!(f.ask(DS_LIST, &one("zzz")).bulk, b"");
    assert_eq!(
        wire::split(&f.ask(DS_LIST, &one("vfs")).bulk).unwrap(),
        ["vfs", "vfs.a", "vfs.b", "vfsx"]
    );
}

#[test]
fn list_errors() {
    let mut f = Fixture::default();
    assert_eq!(f.status(DS_LIST, b""), EINVAL);
    assert_eq!(f.status(DS_LIST, b"a\0b\0"), EINVAL);
    assert_eq!(f.status(DS_LIST, b"\xfe\0"), EINVAL);
    let too_long = "k".repeat(KEY_MAX + 1);
    assert_eq!(f.status(DS_LIST, &one(&too_long)), ENAMETOOLONG);
}

#[test]
fn unknown_opcodes_are_enosys() {
    let mut f = Fixture::default();
    assert_eq!(f.status(PM_GETPID, b""), ENOSYS);
    assert_eq!(f.status(0x7fff, b""), ENOSYS);
}
