//! The opcode registry: every message kind, and its SEEP class.
//!
//! The VMM decides whether a message can expose the sender's state (a state-exporting
//! point, SEEP) from this table alone; a message with an opcode not in the table is a
//! fault of its sender. Ranges: `0x0000` replies and system messages, `0x7f00..`
//! test and benchmark messages, later `0x01xx` PM, `0x02xx` VFS, `0x03xx` DS, `0x04xx`
//! MM, `0x05xx` block drivers.

/// What a message does to the state of the system, which decides whether it closes
/// the sender's recovery window (docs/recovery.md, "The window").
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

/// True for an Update whose receiver ends in the same state however many times it is
/// sent: the end of a process, as PM tells VFS, MM and DS (each frees what the
/// process held; a second notice finds nothing). A one-way message that sends one
/// can be rolled back and replayed consistently: the replay sends it again, to the
/// same effect. The receivers' unit tests check that a repeat changes nothing.
pub const fn is_repeatable(code: u16) -> bool {
    matches!(code, VFS_PROC_EXIT | MM_PROC_EXIT | DS_PROC_EXIT)
}

/// The reply to a request (status in the header, result in the payload).
pub const REPLY: u16 = 0x0000;

/// Kernel call (PM to the VMM): create an app domain from the ELF in the bulk data.
pub const SYS_CREATE_DOMAIN: u16 = 0x0010;
/// Kernel call (PM to the VMM): stop a domain (a kill).
pub const SYS_KILL_DOMAIN: u16 = 0x0011;
/// Kernel call (VFS to the VMM): the root file system archive, in the reply's bulk.
pub const SYS_ROOT_FS: u16 = 0x0012;
/// VMM to PM, one-way: an app domain stopped (exit code or fault in the payload).
pub const SYS_DOMAIN_EXITED: u16 = 0x0013;
/// Kernel call (PM to the VMM): let a domain made by `SYS_CREATE_DOMAIN` run, once
/// the servers know it (a created domain does not run before).
pub const SYS_START_DOMAIN: u16 = 0x0014;

/// PM: start a program (path and argv in the bulk data).
pub const PM_SPAWN: u16 = 0x0100;
/// PM: wait for a child to end (deferred until one does).
pub const PM_WAIT: u16 = 0x0101;
/// PM: the caller's pid.
pub const PM_GETPID: u16 = 0x0102;
/// PM: the caller's parent's pid.
pub const PM_GETPPID: u16 = 0x0103;
/// PM: stop a process.
pub const PM_KILL: u16 = 0x0104;
/// PM: the process table.
pub const PM_PS: u16 = 0x0105;
/// PM: the caller's argument list (as given to `PM_SPAWN`), in the reply's bulk data.
pub const PM_GETARGS: u16 = 0x0106;

/// VFS: open (path in bulk).
pub const VFS_OPEN: u16 = 0x0200;
/// VFS: close.
pub const VFS_CLOSE: u16 = 0x0201;
/// VFS: read at the descriptor's offset (moves it).
pub const VFS_READ: u16 = 0x0202;
/// VFS: write at the descriptor's offset (data in bulk).
pub const VFS_WRITE: u16 = 0x0203;
/// VFS: read at an offset.
pub const VFS_PREAD: u16 = 0x0204;
/// VFS: write at an offset.
pub const VFS_PWRITE: u16 = 0x0205;
/// VFS: move the descriptor's offset.
pub const VFS_LSEEK: u16 = 0x0206;
/// VFS: stat a path.
pub const VFS_STAT: u16 = 0x0207;
/// VFS: stat a descriptor.
pub const VFS_FSTAT: u16 = 0x0208;
/// VFS: remove a file.
pub const VFS_UNLINK: u16 = 0x0209;
/// VFS: make a directory.
pub const VFS_MKDIR: u16 = 0x020a;
/// VFS: remove an empty directory.
pub const VFS_RMDIR: u16 = 0x020b;
/// VFS: list a directory.
pub const VFS_READDIR: u16 = 0x020c;
/// VFS: rename (both paths in bulk).
pub const VFS_RENAME: u16 = 0x020d;
/// VFS: set a file's length (path in bulk).
pub const VFS_TRUNCATE: u16 = 0x020e;
/// VFS: duplicate a descriptor.
pub const VFS_DUP: u16 = 0x020f;
/// VFS: make a pipe.
pub const VFS_PIPE: u16 = 0x0210;
/// VFS (from PM): a process was spawned; give it a descriptor table.
pub const VFS_PROC_SPAWN: u16 = 0x0211;
/// VFS (from PM): a process ended; close its descriptors.
pub const VFS_PROC_EXIT: u16 = 0x0212;
/// VFS: make a file's data and the file system's metadata durable (`fsync`).
pub const VFS_FSYNC: u16 = 0x0213;
/// VFS: read at an offset of the file a path names, with no descriptor (path in bulk;
/// the file's status and the bytes in the reply). A query: PM loads programs with it,
/// so that a spawn changes nothing in VFS before it makes the domain.
pub const VFS_PREAD_PATH: u16 = 0x0214;

/// DS: publish a key (key and value in bulk).
pub const DS_PUBLISH: u16 = 0x0300;
/// DS: retrieve a key's value.
pub const DS_RETRIEVE: u16 = 0x0301;
/// DS: delete a key.
pub const DS_DELETE: u16 = 0x0302;
/// DS: list keys by prefix.
pub const DS_LIST: u16 = 0x0303;
/// DS: wait until a key with a prefix changes (deferred until one does).
pub const DS_SUBSCRIBE: u16 = 0x0304;
/// DS (from PM): a process ended; end its subscriptions and hand its values to its
/// heir (`ankh_proto::ds::OwnerExit`).
pub const DS_PROC_EXIT: u16 = 0x0305;
/// DS (from PM): a process was spawned; it joins its parent's session, whose share
/// its keys are charged to (`ankh_proto::vfs::ProcSpawn`, as for VFS and MM).
pub const DS_PROC_SPAWN: u16 = 0x0306;

/// MM: move the caller's heap break.
pub const MM_BRK: u16 = 0x0400;
/// MM: map a region.
pub const MM_MAP: u16 = 0x0401;
/// MM: unmap a region.
pub const MM_UNMAP: u16 = 0x0402;
/// MM: the caller's and the system's memory use.
pub const MM_USAGE: u16 = 0x0403;
/// MM (from PM): a process was spawned.
pub const MM_PROC_SPAWN: u16 = 0x0404;
/// MM (from PM): a process ended; free its memory.
pub const MM_PROC_EXIT: u16 = 0x0405;
/// Block driver: the device's geometry (`ankh_proto::blk::Geometry` in the reply).
pub const BLK_INFO: u16 = 0x0500;
/// Block driver: read sectors (`ankh_proto::blk::Range`; the data in the reply's bulk).
pub const BLK_READ: u16 = 0x0501;
/// Block driver: write sectors (`ankh_proto::blk::Range`; the data in bulk).
pub const BLK_WRITE: u16 = 0x0502;
/// Block driver: make every completed write durable (reaches the host file).
pub const BLK_FLUSH: u16 = 0x0503;

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
/// Test: the receiver crashes (a poison request: `echo` executes `ud2`).
pub const TEST_CRASH: u16 = 0x7f07;
/// Test: the receiver hangs (spins without exits) while handling it.
pub const TEST_HANG: u16 = 0x7f0a;
/// Test: the receiver loops forever making hypercalls (busy, but never silent: only
/// the per-request budget catches it).
pub const TEST_BUSY: u16 = 0x7f0b;
/// Test: ask for the number of `TEST_NOTIFY` messages the receiver has counted.
pub const TEST_COUNT: u16 = 0x7f09;
/// Test: the receiver answers its parked requests (exposing its state to other
/// clients: its recovery window closes), then crashes.
pub const TEST_RELEASE_CRASH: u16 = 0x7f08;
/// Test: a one-way message that makes the receiver change its state, then crash
/// (`echo` corrupts what it stored, counts it as a notification, executes `ud2`).
pub const TEST_NOTIFY_CRASH: u16 = 0x7f0c;

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
    op(
        SYS_CREATE_DOMAIN,
        "sys-create-domain",
        SeepClass::External,
        true,
    ),
    op(
        SYS_KILL_DOMAIN,
        "sys-kill-domain",
        SeepClass::External,
        true,
    ),
    op(SYS_ROOT_FS, "sys-root-fs", SeepClass::Query, true),
    op(
        SYS_DOMAIN_EXITED,
        "sys-domain-exited",
        SeepClass::Update,
        false,
    ),
    op(
        SYS_START_DOMAIN,
        "sys-start-domain",
        SeepClass::External,
        true,
    ),
    op(PM_SPAWN, "pm-spawn", SeepClass::Update, true),
    op(PM_WAIT, "pm-wait", SeepClass::Update, true),
    op(PM_GETPID, "pm-getpid", SeepClass::Query, true),
    op(PM_GETPPID, "pm-getppid", SeepClass::Query, true),
    op(PM_KILL, "pm-kill", SeepClass::Update, true),
    op(PM_PS, "pm-ps", SeepClass::Query, true),
    op(PM_GETARGS, "pm-getargs", SeepClass::Query, true),
    op(VFS_OPEN, "vfs-open", SeepClass::Update, true),
    op(VFS_CLOSE, "vfs-close", SeepClass::Update, true),
    op(VFS_READ, "vfs-read", SeepClass::Update, true),
    op(VFS_WRITE, "vfs-write", SeepClass::Update, true),
    op(VFS_PREAD, "vfs-pread", SeepClass::Query, true),
    op(VFS_PWRITE, "vfs-pwrite", SeepClass::Update, true),
    op(VFS_LSEEK, "vfs-lseek", SeepClass::Update, true),
    op(VFS_STAT, "vfs-stat", SeepClass::Query, true),
    op(VFS_FSTAT, "vfs-fstat", SeepClass::Query, true),
    op(VFS_UNLINK, "vfs-unlink", SeepClass::Update, true),
    op(VFS_MKDIR, "vfs-mkdir", SeepClass::Update, true),
    op(VFS_RMDIR, "vfs-rmdir", SeepClass::Update, true),
    op(VFS_READDIR, "vfs-readdir", SeepClass::Query, true),
    op(VFS_RENAME, "vfs-rename", SeepClass::Update, true),
    op(VFS_TRUNCATE, "vfs-truncate", SeepClass::Update, true),
    op(VFS_DUP, "vfs-dup", SeepClass::Update, true),
    op(VFS_PIPE, "vfs-pipe", SeepClass::Update, true),
    op(VFS_PROC_SPAWN, "vfs-proc-spawn", SeepClass::Update, true),
    op(VFS_PROC_EXIT, "vfs-proc-exit", SeepClass::Update, true),
    op(VFS_FSYNC, "vfs-fsync", SeepClass::Update, true),
    op(VFS_PREAD_PATH, "vfs-pread-path", SeepClass::Query, true),
    op(DS_PUBLISH, "ds-publish", SeepClass::Update, true),
    op(DS_RETRIEVE, "ds-retrieve", SeepClass::Query, true),
    op(DS_DELETE, "ds-delete", SeepClass::Update, true),
    op(DS_LIST, "ds-list", SeepClass::Query, true),
    op(DS_SUBSCRIBE, "ds-subscribe", SeepClass::Update, true),
    op(DS_PROC_EXIT, "ds-proc-exit", SeepClass::Update, true),
    op(DS_PROC_SPAWN, "ds-proc-spawn", SeepClass::Update, true),
    op(MM_BRK, "mm-brk", SeepClass::Update, true),
    op(MM_MAP, "mm-map", SeepClass::Update, true),
    op(MM_UNMAP, "mm-unmap", SeepClass::Update, true),
    op(MM_USAGE, "mm-usage", SeepClass::Query, true),
    op(MM_PROC_SPAWN, "mm-proc-spawn", SeepClass::Update, true),
    op(MM_PROC_EXIT, "mm-proc-exit", SeepClass::Update, true),
    op(BLK_INFO, "blk-info", SeepClass::Query, true),
    op(BLK_READ, "blk-read", SeepClass::Query, true),
    op(BLK_WRITE, "blk-write", SeepClass::Update, true),
    op(BLK_FLUSH, "blk-flush", SeepClass::Update, true),
    op(TEST_PING, "test-ping", SeepClass::Query, true),
    op(TEST_ECHO, "test-echo", SeepClass::Query, true),
    op(TEST_STORE, "test-store", SeepClass::Update, true),
    op(TEST_NOTIFY, "test-notify", SeepClass::Update, false),
    op(TEST_PRINT, "test-print", SeepClass::External, true),
    op(TEST_DEFERRED, "test-deferred", SeepClass::Query, true),
    op(TEST_RELEASE, "test-release", SeepClass::Update, true),
    op(TEST_CRASH, "test-crash", SeepClass::Query, true),
    op(
        TEST_RELEASE_CRASH,
        "test-release-crash",
        SeepClass::Update,
        true,
    ),
    op(TEST_COUNT, "test-count", SeepClass::Query, true),
    op(TEST_HANG, "test-hang", SeepClass::Query, true),
    op(TEST_BUSY, "test-busy", SeepClass::Query, true),
    op(
        TEST_NOTIFY_CRASH,
        "test-notify-crash",
        SeepClass::Update,
        false,
    ),
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
