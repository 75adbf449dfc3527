//! The call graph: who may send requests to whom, resolved to ids and checked acyclic.

use crate::error::DescriptionError;
use crate::spec::{DomainId, DomainSpec, MAX_DOMAINS};
use crate::validate::{Invalid, Site};

/// Words of one row of the may-call matrix: one bit per possible id (0..=255).
const ROW_WORDS: usize = (MAX_DOMAINS + 1).div_ceil(64);

/// The resolved call graph of a validated system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CallGraph {
    /// Per domain index: the ids it may call, in the order of its `calls`.
    callees: Vec<Vec<DomainId>>,
    /// Per domain index: bit `id` is set when it may call domain `id`.
    may_call: Vec<[u64; ROW_WORDS]>,
}

/// The id of the domain at `index` of the description.
pub(crate) fn id_from_index(index: usize) -> DomainId {
    DomainId::try_from(index + 1).expect("a validated system has at most MAX_DOMAINS domains")
}

/// The index in the description of domain `id`, if it can be one.
pub(crate) fn index_from_id(id: DomainId) -> Option<usize> {
    usize::try_from(id).ok()?.checked_sub(1)
}

impl CallGraph {
    /// Resolves every domain's `calls` to ids and checks the graph. The names must
    /// already be valid and unique, and there are at most [`MAX_DOMAINS`] domains.
    pub(crate) fn resolve(domains: &[DomainSpec]) -> Result<CallGraph, Invalid> {
        let index_of = |name: &str| domains.iter().position(|d| d.name == name);
        let mut callees = Vec::with_capacity(domains.len());
        let mut may_call = vec![[0u64; ROW_WORDS]; domains.len()];
        for (from, domain) in domains.iter().enumerate() {
            let mut ids = Vec::with_capacity(domain.calls.len());
            for (slot, callee) in domain.calls.iter().enumerate() {
                let site = Site::Call(from, slot);
                let to = index_of(callee).ok_or_else(|| {
                    Invalid::new(
                        DescriptionError::UnknownCallee {
                            domain: domain.name.clone(),
                            callee: callee.clone(),
                        },
                        site,
                    )
                })?;
                if to == from {
                    let error = DescriptionError::SelfCall {
                        domain: domain.name.clone(),
                    };
                    return Err(Invalid::new(error, site));
                }
                // Bit `id` of the row, where id = to + 1.
                let (word, bit) = ((to + 1) / 64, (to + 1) % 64);
                if may_call[from][word] & (1 << bit) != 0 {
                    let error = DescriptionError::DuplicateCallee {
                        domain: domain.name.clone(),
                        callee: callee.clone(),
                    };
                    return Err(Invalid::new(error, site));
                }
                may_call[from][word] |= 1 << bit;
                ids.push(id_from_index(to));
            }
            callees.push(ids);
        }
        let graph = CallGraph { callees, may_call };
        graph.check_acyclic(domains)?;
        Ok(graph)
    }

    /// Fails with the first cycle found by a depth-first search that visits domains
    /// and callees in description order (so the report is deterministic).
    fn check_acyclic(&self, domains: &[DomainSpec]) -> Result<(), Invalid> {
        let mut state = vec![Visit::New; domains.len()];
        let mut stack = Vec::new();
        for start in 0..domains.len() {
            if state[start] == Visit::New {
                self.visit(start, &mut state, &mut stack, domains)?;
            }
        }
        Ok(())
    }

    fn visit(
        &self,
        node: usize,
        state: &mut [Visit],
        stack: &mut Vec<usize>,
        domains: &[DomainSpec],
    ) -> Result<(), Invalid> {
        state[node] = Visit::OnStack;
        stack.push(node);
        for (slot, &id) in self.callees[node].iter().enumerate() {
            let next = index_from_id(id).expect("callees hold valid ids");
            match state[next] {
                Visit::Done => {}
                Visit::New => self.visit(next, state, stack, domains)?,
                Visit::OnStack => {
                    let first = stack.iter().position(|&n| n == next).unwrap_or(0);
                    let cycle = stack[first..]
                        .iter()
                        .chain(std::iter::once(&next))
                        .map(|&n| domains[n].name.clone())
                        .collect();
                    let error = DescriptionError::Cycle { cycle };
                    return Err(Invalid::new(error, Site::Call(node, slot)));
                }
            }
        }
        stack.pop();
        state[node] = Visit::Done;
        Ok(())
    }

    /// The ids domain `index` may call, in `calls` order.
    pub(crate) fn callees(&self, index: usize) -> &[DomainId] {
        self.callees.get(index).map_or(&[], Vec::as_slice)
    }

    /// Whether domain `index` may call domain `to`.
    pub(crate) fn may_call(&self, index: usize, to: DomainId) -> bool {
        let Ok(to) = usize::try_from(to) else {
            return false;
        };
        self.may_call
            .get(index)
            .and_then(|row| row.get(to / 64))
            .is_some_and(|word| word & (1 << (to % 64)) != 0)
    }
}

/// Depth-first search state of one domain.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Visit {
    New,
    OnStack,
    Done,
}
