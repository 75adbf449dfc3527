//! `hostile ds-session`: helpers (`ds-holder`) that each publish the largest values
//! up to their own DS quota and stay alive, until DS refuses one below its quota:
//! that must come at this program's session share (`SESSION_BYTES_MAX`, half the
//! store), not when the store is full. While the helpers hold the share, a program
//! of another session (`hostile ds-witness`, another job of init) publishes up to
//! its own quota: the rest of the system still can.
//!
//! The two meet through DS keys outside the attack's own (`hostile.`): the attack
//! sets [`FULL_KEY`] to `1` once it is refused and the witness answers with
//! [`ACK_KEY`] once it has published.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use ankh_proto::ds::{entry_cost, OWNER_BYTES_MAX, SESSION_BYTES_MAX, STORE_BYTES_MAX, VALUE_MAX};
use ankh_proto::errno::{EINVAL, ENOENT, ENOSPC};
use ankh_ulib::args::args_key;
use ankh_ulib::{Channel, Fd, Os};

use super::{end_helpers, fill_ds, helper_pipes, key, Failure, HOSTILE};
use crate::helpers::fd_arg;

/// Prefix of the handshake keys: the witness's subscription wakes only for them.
const HANDSHAKE_PREFIX: &str = "hostile-ds.";
/// `0` while the attack fills, `1` once it holds its session's share.
pub const FULL_KEY: &str = "hostile-ds.full";
/// Published by the witness once it has published beside the full session.
pub const ACK_KEY: &str = "hostile-ds.ack";
/// Most helpers: enough to fill the whole store, should the share not hold.
pub const DS_HOLDERS_MAX: usize = STORE_BYTES_MAX / OWNER_BYTES_MAX + 2;
/// Most times the attack sets [`FULL_KEY`] again while waiting for the witness: it
/// waits for the marker from its start, so a few turns do in a run; this many take
/// seconds, for a witness that failed or was never started.
const WITNESS_TURNS: usize = 100_000;

/// What a helper reports: the bytes it holds and the cost of the key it was refused.
const REPORT_LEN: usize = 16;

/// The `ds-session` attack; the bytes its session held when DS refused it.
pub(super) fn ds_session<C: Channel>(os: &mut Os<C>) -> Result<u64, Failure> {
    let me = os.getpid().map_err(|e| ("getpid", e))?;
    // Published first, so its cost is in the share; setting it to a value as long
    // later needs no more room.
    os.ds_publish(FULL_KEY, "0")
        .map_err(|e| ("publish marker", e))?;
    let pipes = helper_pipes(os)?;
    let [ready_r, ..] = pipes;
    // This process's own keys: the marker and the helpers' arguments.
    let args = os
        .ds_retrieve(&args_key(me))
        .map_err(|e| ("retrieve args", e))?;
    let mut held = entry_cost(FULL_KEY.len(), 1) + entry_cost(args_key(me).len(), args.len());
    let mut helpers = Vec::new();
    let mut refused = None;
    while refused.is_none() && helpers.len() < DS_HOLDERS_MAX {
        let pid = os
            .spawn(HOSTILE, &["hostile", "ds-holder"], true)
            .map_err(|e| ("spawn", e))?;
        helpers.push(pid);
        let [bytes, refused_cost] = read_report(os, ready_r)?;
        let (bytes, refused_cost) = (to_usize(bytes), to_usize(refused_cost));
        held += bytes;
        // Refused with room left in its own quota: by the session's share.
        if bytes + refused_cost <= OWNER_BYTES_MAX {
            refused = Some(refused_cost);
        }
    }
    let witnessed = await_witness(os);
    end_helpers(os, &helpers, pipes)?;
    os.ds_delete(FULL_KEY).map_err(|e| ("delete", e))?;
    match os.ds_delete(ACK_KEY) {
        // No answer: the witness's failure says why.
        Ok(()) | Err(ENOENT) => {}
        Err(errno) => return Err(("delete", errno)),
    }
    let figure = |bytes: usize| i32::try_from(bytes).unwrap_or(i32::MAX);
    let Some(refused_cost) = refused else {
        return Err(("never refused below a helper's quota (bytes)", figure(held)));
    };
    if held > SESSION_BYTES_MAX || held + refused_cost <= SESSION_BYTES_MAX {
        return Err((
            "refused other than at the session share (bytes)",
            figure(held),
        ));
    }
    witnessed?;
    Ok(u64::try_from(held).unwrap_or(u64::MAX))
}

/// Sets [`FULL_KEY`] to `1` until the witness answers ([`ACK_KEY`]). Each setting
/// wakes the witness's subscription, so a setting it missed (made between its
/// retrieve and its subscribe) is followed by one it does not.
fn await_witness<C: Channel>(os: &mut Os<C>) -> Result<(), Failure> {
    for _ in 0..WITNESS_TURNS {
        os.ds_publish(FULL_KEY, "1")
            .map_err(|e| ("publish marker", e))?;
        match os.ds_retrieve(ACK_KEY) {
            Ok(_) => return Ok(()),
            Err(ENOENT) => {}
            Err(errno) => return Err(("retrieve answer", errno)),
        }
    }
    Err(("no witness answered (run hostile ds-witness beside)", 0))
}

/// Reads a helper's report from `fd`: two numbers, 8 bytes each, little endian.
fn read_report<C: Channel>(os: &mut Os<C>, fd: Fd) -> Result<[u64; 2], Failure> {
    let mut report = [0u8; REPORT_LEN];
    let mut got = 0;
    while got < REPORT_LEN {
        match os.read(fd, &mut report[got..]) {
            Ok(0) => return Err(("helper ended before its report", 0)),
            Ok(n) => got += n,
            Err(errno) => return Err(("read", errno)),
        }
    }
    let number = |at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&report[at..at + 8]);
        u64::from_le_bytes(bytes)
    };
    Ok([number(0), number(8)])
}

/// A reported number as a `usize` (saturating: a figure too large fails the checks).
fn to_usize(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

/// `ds-holder`: publishes the largest values until DS refuses (`ENOSPC`), reports the
/// bytes it holds and the cost of the key refused to its parent's pipe, and blocks
/// until killed.
pub(super) fn ds_holder<C: Channel>(os: &mut Os<C>) -> Result<u64, Failure> {
    let args = os.parent_args().map_err(|e| ("parent args", e))?;
    let fd = |index| fd_arg(&args, index).ok_or(("args", EINVAL));
    let (ready, block) = (fd(0)?, fd(1)?);
    let me = os.getpid().map_err(|e| ("getpid", e))?;
    let value = String::from_utf8(vec![b'x'; VALUE_MAX]).unwrap_or_default();
    let (mut held, mut taken) = (0, 0);
    let refused_cost = loop {
        let key = key(me, taken);
        let cost = entry_cost(key.len(), VALUE_MAX);
        match os.ds_publish(&key, &value) {
            Ok(()) => {
                held += cost;
                taken += 1;
            }
            Err(ENOSPC) => break cost,
            Err(errno) => return Err(("publish", errno)),
        }
        if held > OWNER_BYTES_MAX {
            return Err(("over the quota", 0));
        }
    };
    let report = [held, refused_cost].map(|n| u64::try_from(n).unwrap_or(u64::MAX));
    let mut bytes = [0u8; REPORT_LEN];
    bytes[..8].copy_from_slice(&report[0].to_le_bytes());
    bytes[8..].copy_from_slice(&report[1].to_le_bytes());
    // ulib's write sends the rest of a short pipe write until all of it is in.
    os.write(ready, &bytes).map_err(|e| ("write", e))?;
    let _ = os.read(block, &mut [0u8; 1]);
    Err(("woken", 0))
}

/// `ds-witness`: waits until the attack holds its session's share ([`FULL_KEY`] is
/// `1`), then publishes the largest values up to its own quota (DS must refuse it
/// there, not earlier), deletes them and answers ([`ACK_KEY`]); the bytes it held.
pub(super) fn ds_witness<C: Channel>(os: &mut Os<C>) -> Result<u64, Failure> {
    let mut seen = false;
    loop {
        match os.ds_retrieve(FULL_KEY) {
            Ok(value) if value == "1" => break,
            Ok(_) => seen = true,
            Err(ENOENT) if seen => return Err(("the attack ended before its share", 0)),
            Err(ENOENT) => {}
            Err(errno) => return Err(("retrieve marker", errno)),
        }
        // Woken by the next change of a handshake key (see `await_witness`).
        os.ds_subscribe(HANDSHAKE_PREFIX)
            .map_err(|e| ("subscribe", e))?;
    }
    // As much as one owner may hold: refused at its own quota, not by a full store.
    let taken = fill_ds(os)?;
    let me = os.getpid().map_err(|e| ("getpid", e))?;
    let cost = |n| entry_cost(key(me, n).len(), VALUE_MAX);
    let held: usize = (0..taken).map(cost).sum();
    if held + cost(taken) <= OWNER_BYTES_MAX {
        let figure = i32::try_from(held).unwrap_or(i32::MAX);
        return Err(("refused below its own quota (bytes)", figure));
    }
    for n in 0..taken {
        os.ds_delete(&key(me, n)).map_err(|e| ("delete", e))?;
    }
    os.ds_publish(ACK_KEY, "1").map_err(|e| ("answer", e))?;
    Ok(u64::try_from(held).unwrap_or(u64::MAX))
}
