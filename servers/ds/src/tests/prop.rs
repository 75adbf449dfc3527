//! Random request sequences never panic and keep the store within its bounds.

use std::collections::BTreeMap;

use ankh_proto::ds::{
    ENTRIES_MAX, OWNER_BYTES_MAX, OWNER_ENTRIES_MAX, STORE_BYTES_MAX, SUBSCRIPTIONS_MAX,
};
use ankh_proto::errno::ESRCH;
use ankh_proto::opcode::{DS_DELETE, DS_LIST, DS_PUBLISH, DS_RETRIEVE, DS_SUBSCRIBE};
use ankh_proto::server::Handled;
use proptest::prelude::*;

use super::Fixture;

/// An opcode, mostly DS's own.
fn opcode() -> impl Strategy<Value = u16> {
    prop_oneof![
        4 => prop::sample::select(vec![DS_PUBLISH, DS_RETRIEVE, DS_DELETE, DS_LIST, DS_SUBSCRIBE]),
        1 => any::<u16>(),
    ]
}

/// Bulk data: well-formed lists of short keys most of the time, garbage otherwise.
fn bulk() -> impl Strategy<Value = Vec<u8>> {
    let item = "[ab.]{0,3}";
    prop_oneof![
        4 => prop::collection::vec(item, 0..4).prop_map(|items| {
            ankh_proto::wire::join(items.iter().map(String::as_str))
        }),
        1 => prop::collection::vec(any::<u8>(), 0..80),
    ]
}

proptest! {
    #[test]
    fn random_requests_never_panic(
        requests in prop::collection::vec((1u32..5, opcode(), 0u64..3, bulk()), 0..200)
    ) {
        let mut f = Fixture::default();
        let mut parked = BTreeMap::new();
        for (n, (source, opcode, one_way, bulk)) in requests.into_iter().enumerate() {
            let id = if one_way == 0 { 0 } else { u64::try_from(n).unwrap() + 1 };
            let before = f.kernel.replies.len();
            if let Handled::Deferred = f.send_with_id(source, opcode, id, &bulk) {
                prop_assert!(id != 0 && opcode == DS_SUBSCRIBE);
                parked.insert(id, source);
            }
            for (answered, reply) in &f.kernel.replies[before..] {
                prop_assert!(parked.remove(answered).is_some(), "answered twice or never parked");
                prop_assert_eq!(reply.status, 0);
            }
            prop_assert_eq!(parked.len(), f.ds.subscriptions());
            prop_assert!(f.ds.len() <= ENTRIES_MAX);
            let total = f.ds.total_usage();
            prop_assert_eq!(total.entries, f.ds.len());
            prop_assert!(total.bytes <= STORE_BYTES_MAX);
            for owner in 1..5 {
                let usage = f.ds.usage(owner);
                prop_assert!(usage.entries <= OWNER_ENTRIES_MAX);
                prop_assert!(usage.bytes <= OWNER_BYTES_MAX);
            }
            prop_assert!(f.ds.subscriptions() <= SUBSCRIPTIONS_MAX);
            if n % 17 == 0 {
                let before = f.kernel.replies.len();
                let dropped = f.ds.drop_process(source, &mut f.kernel);
                let mine: Vec<u64> = parked
                    .iter()
                    .filter(|(_, from)| **from == source)
                    .map(|(id, _)| *id)
                    .collect();
                prop_assert_eq!(dropped, mine.len());
                for (answered, reply) in &f.kernel.replies[before..] {
                    prop_assert!(parked.remove(answered) == Some(source));
                    prop_assert_eq!(reply.status, ESRCH);
                }
                prop_assert_eq!(parked.len(), f.ds.subscriptions());
            }
        }
        prop_assert!(f.kernel.calls.is_empty());
    }
}
