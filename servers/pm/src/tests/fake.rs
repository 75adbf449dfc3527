//! A fake of everything PM calls: VFS (files, read by path), the VMM
//! (domains), MM and DS. Scripted results, per opcode and in order, take the place
//! of the simulation, for errors and malformed replies.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use ankh_proto::errno::{self, Errno};
use ankh_proto::opcode::*;
use ankh_proto::server::{Endpoint, Kernel, Reply};
use ankh_proto::sys::{CreateDomain, Created, KillDomain, StartDomain};
use ankh_proto::vfs::{Io, Stat, IO_MAX, KIND_FILE};
use ankh_proto::wire;

/// One call PM made.
#[derive(Clone, Debug)]
pub(crate) struct Call {
    pub(crate) to: Endpoint,
    pub(crate) opcode: u16,
    pub(crate) payload: Vec<u8>,
    pub(crate) bulk: Vec<u8>,
}

/// A domain the fake VMM made.
#[derive(Clone, Debug)]
pub(crate) struct NewDomain {
    pub(crate) id: u32,
    pub(crate) request: CreateDomain,
    /// `name\0` + image, as sent.
    pub(crate) bulk: Vec<u8>,
}

/// The world around PM.
#[derive(Debug)]
pub(crate) struct World {
    pub(crate) files: BTreeMap<String, Vec<u8>>,
    pub(crate) dirs: BTreeSet<String>,
    pub(crate) next_domain: u32,
    /// Size `VFS_PREAD_PATH` reports instead of the true one.
    pub(crate) fake_size: Option<u64>,
    script: BTreeMap<u16, VecDeque<Result<Reply, Errno>>>,
    pub(crate) calls: Vec<Call>,
    pub(crate) replies: Vec<(u64, Reply)>,
    pub(crate) ds: BTreeMap<String, String>,
    pub(crate) created: Vec<NewDomain>,
    pub(crate) killed: Vec<u32>,
    /// Domains started (`SYS_START_DOMAIN`), in order.
    pub(crate) started: Vec<u32>,
}

/// A small ELF-looking image.
pub(crate) fn elf(body: &[u8]) -> Vec<u8> {
    let mut image = b"\x7fELF".to_vec();
    image.extend_from_slice(body);
    image
}

impl World {
    /// `/bin/sh` and `/bin/hello` (ELF), `/etc/motd` (text), directories `/bin` and
    /// `/etc`; new domains from 10.
    pub(crate) fn new() -> World {
        let mut files = BTreeMap::new();
        files.insert("/bin/sh".to_string(), elf(b"shell code"));
        files.insert("/bin/hello".to_string(), elf(&[7; 300]));
        files.insert("/etc/motd".to_string(), b"hello\n".to_vec());
        World {
            files,
            dirs: ["/bin", "/etc"].iter().map(|d| d.to_string()).collect(),
            next_domain: 10,
            fake_size: None,
            script: BTreeMap::new(),
            calls: Vec::new(),
            replies: Vec::new(),
            ds: BTreeMap::new(),
            created: Vec::new(),
            killed: Vec::new(),
            started: Vec::new(),
        }
    }

    /// The next call with `opcode` gets `result` instead of the simulation.
    pub(crate) fn script(&mut self, opcode: u16, result: Result<Reply, Errno>) {
        self.script.entry(opcode).or_default().push_back(result);
    }

    /// The opcodes called so far, in order.
    pub(crate) fn opcodes(&self) -> Vec<u16> {
        self.calls.iter().map(|c| c.opcode).collect()
    }

    /// The calls made with `opcode`.
    pub(crate) fn calls_of(&self, opcode: u16) -> Vec<Call> {
        self.calls
            .iter()
            .filter(|c| c.opcode == opcode)
            .cloned()
            .collect()
    }

    fn simulate(&mut self, opcode: u16, payload: &[u8], bulk: &[u8]) -> Result<Reply, Errno> {
        let status = |s| Ok(Reply::err(s));
        match opcode {
            VFS_PREAD_PATH => {
                let io: Io = wire::record(payload)?;
                assert_eq!(io.fd, 0, "a read by path has no descriptor");
                if io.len as usize > IO_MAX {
                    return status(errno::EINVAL);
                }
                let path = wire::single(bulk)?;
                if self.dirs.contains(path) {
                    return status(errno::EISDIR);
                }
                let Some(data) = self.files.get(path) else {
                    return status(errno::ENOENT);
                };
                let stat = Stat {
                    ino: 1,
                    size: self.fake_size.unwrap_or(data.len() as u64),
                    kind: KIND_FILE,
                    nlink: 1,
                };
                let start = usize::try_from(io.offset).map_or(data.len(), |at| at.min(data.len()));
                let end = (start + io.len as usize).min(data.len());
                Ok(Reply::ok_with_bulk(
                    wire::bytes(&stat),
                    data[start..end].to_vec(),
                ))
            }
            SYS_CREATE_DOMAIN => {
                let request: CreateDomain = wire::record(payload)?;
                let id = self.next_domain;
                self.next_domain += 1;
                self.created.push(NewDomain {
                    id,
                    request,
                    bulk: bulk.to_vec(),
                });
                Ok(Reply::ok(wire::bytes(&Created { id, reserved: 0 })))
            }
            SYS_KILL_DOMAIN => {
                let KillDomain { id, .. } = wire::record(payload)?;
                self.killed.push(id);
                Ok(Reply::ok(Vec::new()))
            }
            SYS_START_DOMAIN => {
                let StartDomain { id, .. } = wire::record(payload)?;
                self.started.push(id);
                Ok(Reply::ok(Vec::new()))
            }
            VFS_PROC_SPAWN | VFS_PROC_EXIT | MM_PROC_SPAWN | MM_PROC_EXIT | DS_PROC_SPAWN
            | DS_PROC_EXIT => Ok(Reply::ok(Vec::new())),
            DS_PUBLISH => {
                let list = wire::split(bulk)?;
                self.ds.insert(list[0].to_string(), list[1].to_string());
                Ok(Reply::ok(Vec::new()))
            }
            _ => Err(errno::ENOSYS),
        }
    }
}

impl Kernel for World {
    fn call(
        &mut self,
        to: Endpoint,
        opcode: u16,
        payload: &[u8],
        bulk: &[u8],
    ) -> Result<Reply, Errno> {
        self.calls.push(Call {
            to,
            opcode,
            payload: payload.to_vec(),
            bulk: bulk.to_vec(),
        });
        let expected = match opcode >> 8 {
            0x00 => Endpoint::Kernel,
            0x02 => Endpoint::Vfs,
            0x03 => Endpoint::Ds,
            0x04 => Endpoint::Mm,
            _ => Endpoint::Pm,
        };
        assert_eq!(to, expected, "opcode {opcode:#x} sent to {to:?}");
        if let Some(result) = self.script.get_mut(&opcode).and_then(VecDeque::pop_front) {
            return result;
        }
        self.simulate(opcode, payload, bulk)
    }

    fn reply(&mut self, request_id: u64, reply: Reply) {
        self.replies.push((request_id, reply));
    }
}
