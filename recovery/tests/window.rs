//! Recovery window transitions: every class under every policy, from every state,
//! including deferred replies.

use ankh_recovery::{closes, has_window, Policy, RecoveryWindow, SeepClass, WindowState};

const CLASSES: [SeepClass; 4] = [
    SeepClass::Reply,
    SeepClass::Query,
    SeepClass::Update,
    SeepClass::External,
];

use Policy::{Enhanced as Enh, Naive, None as Off, Pessimistic as Pess, Stateless};
use SeepClass::{External as Ext, Query as Q, Reply as R, Update as U};

/// docs/recovery.md, "The window", plus: naive never closes; none and stateless track
/// pessimistically.
#[rustfmt::skip]
const CLOSES: [(Policy, SeepClass, bool); 20] = [
    (Off, R, false), (Off, Q, true), (Off, U, true), (Off, Ext, true),
    (Stateless, R, false), (Stateless, Q, true), (Stateless, U, true), (Stateless, Ext, true),
    (Naive, R, false), (Naive, Q, false), (Naive, U, false), (Naive, Ext, false),
    (Pess, R, false), (Pess, Q, true), (Pess, U, true), (Pess, Ext, true),
    (Enh, R, false), (Enh, Q, false), (Enh, U, true), (Enh, Ext, true),
];

fn open(request: u64) -> RecoveryWindow {
    let mut window = RecoveryWindow::new();
    assert_eq!(window.on_request_delivered(request), WindowState::Idle);
    assert!(window.is_open());
    window
}

#[test]
fn closes_follows_the_table() {
    assert_eq!(CLOSES.len(), Policy::ALL.len() * CLASSES.len());
    for (policy, class, expected) in CLOSES {
        assert_eq!(closes(policy, class), expected, "{policy} {class:?}");
    }
}

#[test]
fn only_naive_pessimistic_and_enhanced_have_a_window() {
    assert!(!has_window(Policy::None));
    assert!(!has_window(Policy::Stateless));
    assert!(has_window(Policy::Naive));
    assert!(has_window(Policy::Pessimistic));
    assert!(has_window(Policy::Enhanced));
}

#[test]
fn outgoing_from_open_under_every_policy() {
    for (policy, class, closing) in CLOSES {
        let mut window = open(3);
        assert_eq!(
            window.on_outgoing(class, policy),
            closing,
            "{policy} {class:?}"
        );
        let expected = if closing {
            WindowState::Closed {
                request: 3,
                by: class,
            }
        } else {
            WindowState::Open { request: 3 }
        };
        assert_eq!(window.state(), expected, "{policy} {class:?}");
        assert_eq!(window.is_open(), !closing);
        assert_eq!(window.request(), Some(3));
    }
}

#[test]
fn outgoing_from_closed_keeps_the_first_class() {
    for policy in [Off, Stateless, Pess, Enh] {
        for class in CLASSES {
            let mut window = open(5);
            assert!(window.on_outgoing(SeepClass::Update, policy));
            assert!(!window.on_outgoing(class, policy), "{policy} {class:?}");
            assert!(!window.on_reply_to_other(policy));
            assert_eq!(
                window.state(),
                WindowState::Closed {
                    request: 5,
                    by: SeepClass::Update
                }
            );
        }
    }
}

#[test]
fn outgoing_while_idle_tracks_nothing() {
    for policy in Policy::ALL {
        for class in CLASSES {
            let mut window = RecoveryWindow::new();
            assert!(!window.on_outgoing(class, policy));
            assert!(!window.on_reply_to_other(policy));
            assert_eq!(window.state(), WindowState::Idle);
            assert!(!window.is_open());
            assert_eq!(window.request(), None);
        }
    }
}

#[test]
fn reply_to_the_request_in_hand_ends_it() {
    for policy in Policy::ALL {
        for class in CLASSES {
            let mut window = open(9);
            let closed = window.on_outgoing(class, policy);
            let finished = window.on_reply_sent();
            assert_eq!(finished.request(), Some(9));
            assert_eq!(finished.is_open(), !closed, "{policy} {class:?}");
            assert_eq!(window.state(), WindowState::Idle);
            assert_eq!(window.on_reply_sent(), WindowState::Idle);
        }
    }
}

#[test]
fn reply_class_in_on_outgoing_changes_nothing() {
    for policy in Policy::ALL {
        let mut window = open(1);
        assert!(!window.on_outgoing(SeepClass::Reply, policy));
        assert_eq!(window.state(), WindowState::Open { request: 1 });
    }
}

#[test]
fn deferred_reply_is_external() {
    // A server parks request 1, serves request 2 and, while doing so, answers 1.
    for policy in Policy::ALL {
        let mut window = open(1);
        assert_eq!(window.end_request(), WindowState::Open { request: 1 });
        assert_eq!(window.on_request_delivered(2), WindowState::Idle);
        let closing = closes(policy, SeepClass::External);
        assert_eq!(window.on_reply_to_other(policy), closing, "{policy}");
        let mut same = open(2);
        same.on_outgoing(SeepClass::External, policy);
        assert_eq!(window, same, "{policy}");
        let finished = window.on_reply_sent();
        assert_eq!(finished.request(), Some(2));
        assert_eq!(
            finished.is_open(),
            matches!(policy, Policy::Naive),
            "{policy}"
        );
    }
}

#[test]
fn enhanced_stays_open_across_queries_until_an_update() {
    let mut window = open(4);
    assert!(!window.on_outgoing(SeepClass::Query, Policy::Enhanced));
    assert!(!window.on_outgoing(SeepClass::Query, Policy::Enhanced));
    assert!(window.is_open());
    assert!(window.on_outgoing(SeepClass::Update, Policy::Enhanced));
    assert_eq!(window.state().closed_by(), Some(SeepClass::Update));
}

#[test]
fn delivery_with_a_request_still_in_hand_ends_it() {
    let mut window = open(1);
    window.on_outgoing(SeepClass::Update, Policy::Pessimistic);
    assert_eq!(
        window.on_request_delivered(2),
        WindowState::Closed {
            request: 1,
            by: SeepClass::Update
        }
    );
    assert_eq!(window.state(), WindowState::Open { request: 2 });
}

#[test]
fn end_request_after_a_fault() {
    let mut window = open(6);
    assert_eq!(window.end_request(), WindowState::Open { request: 6 });
    assert_eq!(window.end_request(), WindowState::Idle);
    assert_eq!(window, RecoveryWindow::default());
}

#[test]
fn state_names() {
    let closed = WindowState::Closed {
        request: 8,
        by: SeepClass::External,
    };
    assert_eq!(WindowState::Idle.to_string(), "idle");
    assert_eq!(
        WindowState::Open { request: 8 }.to_string(),
        "open (request 8)"
    );
    assert_eq!(closed.to_string(), "closed by external (request 8)");
    assert_eq!(closed.as_str(), "closed");
}
