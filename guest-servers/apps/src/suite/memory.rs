//! Memory accounting (MM).

use ankh_proto::mm::PAGE;
use ankh_ulib::errno::{EINVAL, ENOMEM};
use ankh_ulib::mm::Region;
use ankh_ulib::{Channel, Os};

use crate::check::Checker;

/// Runs the section.
pub(super) fn run<C: Channel>(os: &mut Os<C>, check: &mut Checker<'_>) {
    let Some(start) = check.ok("mm usage", os.usage()) else {
        return;
    };
    check.check(
        "mm limit within budget",
        start.limit > 0 && start.limit <= start.system_budget,
    );
    check.check("mm system counts us", start.system_used >= start.used);
    let base = start.used;
    check.ok_eq("mm brk grow", os.brk(8192), 8192);
    check.ok_eq("mm brk counted", os.usage().map(|u| u.used), base + 8192);
    check.ok_eq("mm brk shrink", os.brk(0), 0);
    check.ok_eq("mm brk freed", os.usage().map(|u| u.used), base);
    check.err("mm brk over limit", os.brk(start.limit + 1), ENOMEM);
    check.ok_eq(
        "mm brk refused changes nothing",
        os.usage().map(|u| u.used),
        base,
    );
    let first = check.ok("mm map", os.map(10_000));
    check.check(
        "mm map rounds to pages",
        first.is_some_and(|r| r.len == 3 * PAGE),
    );
    let second = check.ok("mm map second", os.map(PAGE));
    check.check(
        "mm regions distinct",
        matches!((first, second), (Some(a), Some(b)) if a.addr != b.addr),
    );
    check.ok_eq(
        "mm map counted",
        os.usage().map(|u| u.used),
        base + 4 * PAGE,
    );
    if let Some(region) = first {
        check.ok("mm unmap", os.unmap(region));
        check.err("mm unmap twice", os.unmap(region), EINVAL);
    }
    if let Some(region) = second {
        let wrong = Region {
            addr: region.addr,
            len: region.len + PAGE,
        };
        check.err("mm unmap wrong length", os.unmap(wrong), EINVAL);
        check.ok("mm unmap second", os.unmap(region));
    }
    check.ok_eq("mm all freed", os.usage().map(|u| u.used), base);
    check.err("mm map zero", os.map(0), EINVAL);
    check.err("mm map over limit", os.map(start.limit + PAGE), ENOMEM);
    check.fails("mm map absurd", os.map(u64::MAX));
    let Some(half) = check.ok("mm map half", os.map(start.limit / 2)) else {
        return;
    };
    check.err(
        "mm brk over remaining",
        os.brk(start.limit / 2 + PAGE),
        ENOMEM,
    );
    check.ok("mm unmap half", os.unmap(half));
}
