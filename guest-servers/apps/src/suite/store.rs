//! The data store (DS).

use alloc::string::String;
use alloc::vec::Vec;

use ankh_proto::ds::{ENTRIES_MAX, KEY_MAX, VALUE_MAX};
use ankh_ulib::errno::{E2BIG, EINVAL, ENAMETOOLONG, ENOENT, ENOSPC};
use ankh_ulib::num::push_dec;
use ankh_ulib::{Channel, Os};

use crate::check::Checker;

/// Runs the section.
pub(super) fn run<C: Channel>(os: &mut Os<C>, check: &mut Checker<'_>) {
    check.ok("ds publish", os.ds_publish("suite.k1", "v1"));
    check.ok_eq(
        "ds retrieve",
        os.ds_retrieve("suite.k1"),
        String::from("v1"),
    );
    check.ok("ds overwrite", os.ds_publish("suite.k1", "v2"));
    check.ok_eq(
        "ds retrieve new",
        os.ds_retrieve("suite.k1"),
        String::from("v2"),
    );
    check.ok("ds publish second", os.ds_publish("suite.k0", ""));
    check.ok_eq("ds empty value", os.ds_retrieve("suite.k0"), String::new());
    let keys = os.ds_list("suite.k");
    check.ok_eq(
        "ds list sorted",
        keys,
        alloc::vec![String::from("suite.k0"), String::from("suite.k1")],
    );
    check.ok_eq("ds list nothing", os.ds_list("suite.none."), Vec::new());
    check.ok("ds delete", os.ds_delete("suite.k1"));
    check.err("ds retrieve deleted", os.ds_retrieve("suite.k1"), ENOENT);
    check.err("ds delete missing", os.ds_delete("suite.k1"), ENOENT);
    check.ok("ds delete second", os.ds_delete("suite.k0"));
    let long_key = "k".repeat(KEY_MAX + 1);
    check.err(
        "ds key too long",
        os.ds_publish(&long_key, "v"),
        ENAMETOOLONG,
    );
    check.err(
        "ds retrieve key too long",
        os.ds_retrieve(&long_key),
        ENAMETOOLONG,
    );
    check.err("ds empty key", os.ds_publish("", "v"), EINVAL);
    let big = "v".repeat(VALUE_MAX + 1);
    check.err("ds value too big", os.ds_publish("suite.big", &big), E2BIG);
    let max = "v".repeat(VALUE_MAX);
    check.ok("ds largest value", os.ds_publish("suite.big", &max));
    check.ok_eq(
        "ds largest value back",
        os.ds_retrieve("suite.big").map(|v| v.len()),
        VALUE_MAX,
    );
    let _ = os.ds_delete("suite.big");
    full(os, check);
}

/// The key `suite.fill.<n>`.
fn fill_key(n: usize) -> String {
    let mut key = Vec::from(&b"suite.fill."[..]);
    push_dec(&mut key, u64::try_from(n).unwrap_or(u64::MAX));
    String::from_utf8(key).unwrap_or_default()
}

/// Fills DS to `ENTRIES_MAX` keys: the next new key is `ENOSPC`, an existing key can
/// still be overwritten; then removes what it added.
fn full<C: Channel>(os: &mut Os<C>, check: &mut Checker<'_>) {
    let mut added = 0;
    let mut refused = None;
    while added <= ENTRIES_MAX {
        match os.ds_publish(&fill_key(added), "x") {
            Ok(()) => added += 1,
            Err(errno) => {
                refused = Some(errno);
                break;
            }
        }
    }
    check.ok_eq("ds full is enospc", refused.ok_or(0), ENOSPC);
    if added > 0 {
        check.ok("ds overwrite when full", os.ds_publish(&fill_key(0), "y"));
    }
    let mut removed = 0usize;
    for n in 0..added {
        if os.ds_delete(&fill_key(n)).is_ok() {
            removed += 1;
        }
    }
    check.eq(
        "ds fill cleanup",
        i64::try_from(removed).unwrap_or(-1),
        i64::try_from(added).unwrap_or(-1),
    );
    check.ok("ds usable after full", os.ds_publish("suite.after", "1"));
    let _ = os.ds_delete("suite.after");
}
