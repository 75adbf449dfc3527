//! The opcode registry: every message kind, and its SEEP class.
//!
//! The VMM decides whether a message can expose the sender's state (a state-exporting
//! point, SEEP) from this table alone; a message with an opcode not in the table is a
//! fault of its sender. Ranges: `0x0000` replies and system messages, `0x7f00..`
//! test and benchmark messages, later `0x01xx` PM, `0x02xx` VFS, `0x03xx` DS, `0x04xx`
//! MM.

/// What a message does to the state of the system, which decides whether it closes
/// the sender's recovery window (DESIGN.md, "SEEP classes").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeepClass {
    /// The reply to the request being handled: ends the request.
    Reply,
    /// Changes nothing in the receiver (a lookup).
    Query,
    /// Changes the receiver's state.
    Update,
    /// Makes state visible outside the server set (console, devices, other clients).
    External,
}

/// One entry of the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpcodeInfo {
    /// The opcode on the wire.
    pub code: u16,
    /// Its name, for logs and reports.
    pub name: &'static str,
    /// Its SEEP class.
    pub class: SeepClass,
    /// True when the sender expects a reply (`sendrec`); false for one-way messages.
    pub expects_reply: bool,
}

/// The reply to a request (status in the header, result in the payload).
pub const REPLY: u16 = 0x0000;
/// Test: ask for an empty reply.
pub const TEST_PING: u16 = 0x7f00;
/// Test: ask for the payload and bulk data back.
pub const TEST_ECHO: u16 = 0x7f01;
/// Test: store the payload in the receiver (changes its state).
pub const TEST_STORE: u16 = 0x7f02;
/// Test: a one-way notification that changes the receiver's state.
pub const TEST_NOTIFY: u16 = 0x7f03;
/// Test: ask the receiver to print the payload on its console.
pub const TEST_PRINT: u16 = 0x7f04;
/// Test: ask for a reply that the receiver parks and sends later.
pub const TEST_DEFERRED: u16 = 0x7f05;
/// Test: release every parked request (one reply each, then a reply to this one).
pub const TEST_RELEASE: u16 = 0x7f06;

const fn op(code: u16, name: &'static str, class: SeepClass, expects_reply: bool) -> OpcodeInfo {
    OpcodeInfo {
        code,
        name,
        class,
        expects_reply,
    }
}

/// Every opcode, sorted by code.
pub const OPCODES: &[OpcodeInfo] = &[
    op(REPLY, "reply", SeepClass::Reply, false),
    op(TEST_PING, "test-ping", SeepClass::Query, true),
    op(TEST_ECHO, "test-echo", SeepClass::Query, true),
    op(TEST_STORE, "test-store", SeepClass::Update, true),
    op(TEST_NOTIFY, "test-notify", SeepClass::Update, false),
    op(TEST_PRINT, "test-print", SeepClass::External, true),
    op(TEST_DEFERRED, "test-deferred", SeepClass::Query, true),
    op(TEST_RELEASE, "test-release", SeepClass::Update, true),
];

/// The registry entry of `code`, if it is a known opcode.
pub fn lookup(code: u16) -> Option<&'static OpcodeInfo> {
    OPCODES
        .binary_search_by_key(&code, |info| info.code)
        .ok()
        .map(|index| &OPCODES[index])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_sorted_and_unique() {
        assert!(OPCODES.windows(2).all(|w| w[0].code < w[1].code));
    }

    #[test]
    fn lookup_finds_every_opcode_and_nothing_else() {
        for info in OPCODES {
            assert_eq!(lookup(info.code), Some(info));
        }
        assert_eq!(lookup(0x7eff), None);
        assert_eq!(lookup(REPLY).unwrap().class, SeepClass::Reply);
    }
}
