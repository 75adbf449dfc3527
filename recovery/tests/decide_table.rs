//! The decision table of docs/recovery.md, "When a server faults", row by row: every policy x window
//! state x `--fallback restart`.

use std::collections::HashSet;

use ankh_recovery::{decide, Action, Policy, SeepClass, ShutdownReason, WindowState};

const REQUEST: u64 = 42;

/// The window states a fault can meet (one per closing class).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum W {
    Idle,
    Open,
    ClosedQuery,
    ClosedUpdate,
    ClosedExternal,
}

impl W {
    const ALL: [W; 5] = [
        W::Idle,
        W::Open,
        W::ClosedQuery,
        W::ClosedUpdate,
        W::ClosedExternal,
    ];

    fn state(self) -> WindowState {
        let closed = |by| WindowState::Closed {
            request: REQUEST,
            by,
        };
        match self {
            W::Idle => WindowState::Idle,
            W::Open => WindowState::Open { request: REQUEST },
            W::ClosedQuery => closed(SeepClass::Query),
            W::ClosedUpdate => closed(SeepClass::Update),
            W::ClosedExternal => closed(SeepClass::External),
        }
    }
}

/// The expected action.
#[derive(Clone, Copy, Debug)]
enum E {
    Halt,
    Restart,
    Rollback,
    RollbackError,
    Shutdown,
}

use Policy::{Enhanced as Enh, Naive, None as Off, Pessimistic as Pess, Stateless};

#[rustfmt::skip]
const TABLE: [(Policy, W, bool, E); 50] = [
    // none: the system halts, whatever the window.
    (Off, W::Idle, false, E::Halt), (Off, W::Idle, true, E::Halt),
    (Off, W::Open, false, E::Halt), (Off, W::Open, true, E::Halt),
    (Off, W::ClosedQuery, false, E::Halt), (Off, W::ClosedQuery, true, E::Halt),
    (Off, W::ClosedUpdate, false, E::Halt), (Off, W::ClosedUpdate, true, E::Halt),
    (Off, W::ClosedExternal, false, E::Halt), (Off, W::ClosedExternal, true, E::Halt),
    // stateless: restart, whatever the window.
    (Stateless, W::Idle, false, E::Restart), (Stateless, W::Idle, true, E::Restart),
    (Stateless, W::Open, false, E::Restart), (Stateless, W::Open, true, E::Restart),
    (Stateless, W::ClosedQuery, false, E::Restart), (Stateless, W::ClosedQuery, true, E::Restart),
    (Stateless, W::ClosedUpdate, false, E::Restart), (Stateless, W::ClosedUpdate, true, E::Restart),
    (Stateless, W::ClosedExternal, false, E::Restart), (Stateless, W::ClosedExternal, true, E::Restart),
    // naive: rollback + error reply, even closed (may be inconsistent); idle: rollback.
    (Naive, W::Idle, false, E::Rollback), (Naive, W::Idle, true, E::Rollback),
    (Naive, W::Open, false, E::RollbackError), (Naive, W::Open, true, E::RollbackError),
    (Naive, W::ClosedQuery, false, E::RollbackError), (Naive, W::ClosedQuery, true, E::RollbackError),
    (Naive, W::ClosedUpdate, false, E::RollbackError), (Naive, W::ClosedUpdate, true, E::RollbackError),
    (Naive, W::ClosedExternal, false, E::RollbackError), (Naive, W::ClosedExternal, true, E::RollbackError),
    // pessimistic: rollback + error inside, shutdown (or the fallback restart) closed.
    (Pess, W::Idle, false, E::Rollback), (Pess, W::Idle, true, E::Rollback),
    (Pess, W::Open, false, E::RollbackError), (Pess, W::Open, true, E::RollbackError),
    (Pess, W::ClosedQuery, false, E::Shutdown), (Pess, W::ClosedQuery, true, E::Restart),
    (Pess, W::ClosedUpdate, false, E::Shutdown), (Pess, W::ClosedUpdate, true, E::Restart),
    (Pess, W::ClosedExternal, false, E::Shutdown), (Pess, W::ClosedExternal, true, E::Restart),
    // enhanced: the same table (it differs in what closes the window, not here).
    (Enh, W::Idle, false, E::Rollback), (Enh, W::Idle, true, E::Rollback),
    (Enh, W::Open, false, E::RollbackError), (Enh, W::Open, true, E::RollbackError),
    (Enh, W::ClosedQuery, false, E::Shutdown), (Enh, W::ClosedQuery, true, E::Restart),
    (Enh, W::ClosedUpdate, false, E::Shutdown), (Enh, W::ClosedUpdate, true, E::Restart),
    (Enh, W::ClosedExternal, false, E::Shutdown), (Enh, W::ClosedExternal, true, E::Restart),
];

fn expected(e: E, window: WindowState) -> Action {
    match e {
        E::Halt => Action::Halt,
        E::Restart => Action::Restart,
        E::Rollback => Action::Rollback { error_reply: false },
        E::RollbackError => Action::Rollback { error_reply: true },
        E::Shutdown => Action::Shutdown {
            reason: ShutdownReason::WindowClosed {
                request: REQUEST,
                by: window
                    .closed_by()
                    .expect("a shutdown row has a closed window"),
            },
        },
    }
}

#[test]
fn table_covers_every_combination_once() {
    let rows: HashSet<_> = TABLE.iter().map(|&(p, w, f, _)| (p, w, f)).collect();
    assert_eq!(rows.len(), TABLE.len());
    for policy in Policy::ALL {
        for w in W::ALL {
            for fallback in [false, true] {
                assert!(
                    rows.contains(&(policy, w, fallback)),
                    "{policy} {w:?} {fallback}"
                );
            }
        }
    }
}

#[test]
fn decide_follows_the_table() {
    for &(policy, w, fallback, e) in &TABLE {
        let window = w.state();
        assert_eq!(
            decide(policy, window, fallback),
            expected(e, window),
            "{policy}, {w:?}, fallback {fallback}"
        );
    }
}

#[test]
fn shutdown_reason_names_the_request_and_class() {
    let window = WindowState::Closed {
        request: 7,
        by: SeepClass::Update,
    };
    let action = decide(Policy::Enhanced, window, false);
    assert_eq!(action.as_str(), "shutdown");
    assert_eq!(
        action.to_string(),
        "shutdown (fault after request 7 exposed state (update message))"
    );
}

#[test]
fn action_names() {
    assert_eq!(Action::Halt.to_string(), "halt");
    assert_eq!(Action::Restart.to_string(), "restart");
    assert_eq!(
        Action::Rollback { error_reply: true }.to_string(),
        "rollback+error"
    );
    assert_eq!(
        Action::Rollback { error_reply: false }.to_string(),
        "rollback"
    );
}
