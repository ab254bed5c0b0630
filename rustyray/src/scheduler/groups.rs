//! Placement groups: bundles of resources reserved together, all or none, that tasks placed in
//! a bundle draw from (Ray's placement groups, on one node).
//!
//! Each bundle is a [`Pool`] of its own, empty until the group is reserved. Creating a group
//! checks that it could ever be reserved (every bundle within the node, all of them together
//! too, and no `StrictSpread` of several bundles on one node), then reserves it at once if the
//! node has room, or as soon as it has: waiting groups are tried before queued tasks whenever
//! resources come back. Removing a group gives the free part of its bundles back to the node,
//! fails the tasks queued in them, and routes what running tasks hold back to the node when
//! they end (their pool is gone).

use std::collections::VecDeque;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::error::{Error, Result};
use crate::object_store::Cell;

use super::pool::Pool;
use super::{Demand, Scheduler, State, MILLI, NODE};

/// A placement group's number in its runtime.
pub(crate) type GroupId = u64;

/// How a placement group's bundles are placed over the nodes (Ray's strategies). On the
/// embedded runtime there is one node: every strategy puts all bundles on it, except that
/// `StrictSpread` of more than one bundle cannot be placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Strategy {
    /// As few nodes as possible (the default).
    #[default]
    Pack,
    /// As many nodes as possible.
    Spread,
    /// All bundles on one node, or none.
    StrictPack,
    /// Each bundle on a node of its own, or none.
    StrictSpread,
}

/// Where a placement group is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    /// Waiting for its resources.
    Pending,
    /// Reserved: tasks placed in it run.
    Created,
    /// Removed: its resources went back.
    Removed,
}

/// What the state API shows of a placement group.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct GroupInfo {
    pub(crate) id: GroupId,
    pub(crate) name: Option<String>,
    pub(crate) strategy: Strategy,
    pub(crate) state: GroupState,
    /// Each bundle's resources, by name.
    pub(crate) bundles: Vec<Vec<(String, f64)>>,
}

struct Group {
    info: GroupInfo,
    /// Each bundle's pool number.
    pools: Vec<u64>,
    /// Each bundle's demand on the node when it is reserved.
    demands: Vec<Demand>,
    /// Resolves when the group is reserved (fails if it is removed first).
    ready: Arc<Cell>,
}

/// The placement groups of one runtime.
#[derive(Default)]
pub(super) struct Groups {
    /// The last group id given.
    next: u64,
    /// The last bundle pool number given (the node's is 0).
    next_pool: u64,
    /// Live groups (pending or created), oldest first.
    list: Vec<Group>,
    /// Groups waiting for their reservation, in the order they were made.
    pending: VecDeque<GroupId>,
}

/// One bundle as asked for: CPUs, GPUs and custom resources.
pub(crate) struct BundleRequest<'a> {
    pub(crate) cpus: f64,
    pub(crate) gpus: f64,
    pub(crate) custom: &'a [(String, f64)],
}

impl State {
    /// Reserves every waiting group the node has room for now; returns their `ready` cells,
    /// to resolve once the lock is released.
    pub(super) fn reserve_groups(&mut self) -> SmallVec<[Arc<Cell>; 1]> {
        let mut ready = SmallVec::new();
        if self.groups.pending.is_empty() {
            return ready;
        }
        let mut waiting = std::mem::take(&mut self.groups.pending);
        waiting.retain(|&id| {
            let Some(at) = self.groups.list.iter().position(|g| g.info.id == id) else {
                return false;
            };
            let group = &self.groups.list[at];
            if !fits_together(&self.node, &group.demands) {
                return true;
            }
            let (demands, pools) = (group.demands.clone(), group.pools.clone());
            for (demand, number) in demands.iter().zip(pools) {
                let share = self.node.take(demand);
                if let Some(pool) = self.bundles.get_mut(&number) {
                    pool.available = pool.total.clone();
                    pool.give_gpus(&share);
                }
            }
            let group = &mut self.groups.list[at];
            group.info.state = GroupState::Created;
            ready.push(Arc::clone(&group.ready));
            false
        });
        self.groups.pending = waiting;
        ready
    }
}

/// Whether all of `demands` fit `node` at once.
fn fits_together(node: &Pool, demands: &[Demand]) -> bool {
    let mut trial = Pool {
        available: node.available.clone(),
        total: node.total.clone(),
        gpus: node.gpus.clone(),
        removed: false,
    };
    demands.iter().all(|demand| {
        let fits = trial.fits(demand);
        if fits {
            trial.take(demand);
        }
        fits
    })
}

impl Scheduler {
    /// Makes a placement group of `bundles`, reserved now if the node has room, else as soon
    /// as it has; `ready` resolves then. Fails at once if it could never be reserved.
    pub(crate) fn create_group(
        self: &Arc<Self>,
        name: Option<String>,
        strategy: Strategy,
        bundles: &[BundleRequest<'_>],
        ready: Arc<Cell>,
    ) -> Result<GroupId> {
        let label = name
            .as_ref()
            .map_or_else(|| "(unnamed)".to_owned(), |n| format!("`{n}`"));
        let refuse = |reason: String| Error::PlacementGroup {
            group: label.clone(),
            reason,
        };
        if bundles.is_empty() {
            return Err(refuse(
                "it has no bundles; add at least one with `.bundle(..)`".into(),
            ));
        }
        if strategy == Strategy::StrictSpread && bundles.len() > 1 {
            return Err(refuse(format!(
                "StrictSpread needs a node for each of its {} bundles, and the embedded runtime \
                 is one node; use Spread (or Pack), or run on a Ray cluster",
                bundles.len()
            )));
        }
        let mut demands = Vec::with_capacity(bundles.len());
        for (index, bundle) in bundles.iter().enumerate() {
            let exceeds = |resource: &str, requested: f64, available: f64| {
                refuse(format!(
                    "bundle {index} asks for {requested} {resource} but the runtime has \
                     {available} in total; lower the bundle or give the runtime more"
                ))
            };
            let amounts = self.amounts(
                &format!("bundle {index}"),
                bundle.cpus,
                bundle.gpus,
                bundle.custom,
                &self.total,
                &exceeds,
            )?;
            if amounts.is_empty() {
                return Err(refuse(format!(
                    "bundle {index} asks for nothing; give it CPUs, GPUs or a custom resource"
                )));
            }
            demands.push(Demand::new(amounts, NODE));
        }
        if !fits_together(&Pool::node(self.total.clone()), &demands) {
            let resource = (0..self.total.len())
                .find(|&i| demands.iter().map(|d| d.amount(i)).sum::<i64>() > self.total[i])
                .map_or("GPU", |i| self.names[i].as_str());
            return Err(refuse(format!(
                "its bundles together need more {resource} than the runtime has, and all of \
                 them go on its one node ({strategy:?}); use fewer or smaller bundles"
            )));
        }
        let mut state = self.state.lock();
        if let Some(name) = &name {
            if state
                .groups
                .list
                .iter()
                .any(|g| g.info.name.as_ref() == Some(name))
            {
                return Err(refuse(
                    "a placement group of that name exists; remove it first or pick another name"
                        .into(),
                ));
            }
        }
        state.groups.next += 1;
        let id = state.groups.next;
        let mut pools = Vec::with_capacity(demands.len());
        for demand in &demands {
            let mut total = vec![0; self.total.len()];
            for &(i, amount) in demand.amounts.iter() {
                total[i] = amount;
            }
            state.groups.next_pool += 1;
            let number = state.groups.next_pool;
            state.bundles.insert(number, Pool::empty(total));
            pools.push(number);
        }
        let info = GroupInfo {
            id,
            name,
            strategy,
            state: GroupState::Pending,
            bundles: demands.iter().map(|d| self.describe(d)).collect(),
        };
        state.groups.list.push(Group {
            info,
            pools,
            demands,
            ready,
        });
        state.groups.pending.push_back(id);
        let reserved = state.reserve_groups();
        drop(state);
        for ready in reserved {
            ready.finish(Ok(crate::object_store::Object::new(())));
        }
        Ok(id)
    }

    /// Removes a group: gives its bundles' free resources back, fails the tasks queued in it,
    /// and fails its `ready` if it was still waiting. Removing it again does nothing.
    pub(crate) fn remove_group(self: &Arc<Self>, id: GroupId) {
        let mut runnable = super::Runnable::new();
        let (failed, reserved, pending_ready) = {
            let mut state = self.state.lock();
            let Some(at) = state.groups.list.iter().position(|g| g.info.id == id) else {
                return;
            };
            let group = state.groups.list.remove(at);
            state.groups.pending.retain(|&g| g != id);
            let mut failed = Vec::new();
            for number in &group.pools {
                if let Some(pool) = state.bundles.remove(number) {
                    let free: Vec<(usize, i64)> = pool
                        .available
                        .iter()
                        .enumerate()
                        .filter(|(_, amount)| **amount > 0)
                        .map(|(i, amount)| (i, *amount))
                        .collect();
                    state.node.give(&free, &pool.gpus);
                }
                state.queues.retain_mut(|queue| {
                    if queue.demand.pool != *number {
                        return true;
                    }
                    failed.extend(queue.starts.drain(..));
                    false
                });
            }
            let pending_ready = (group.info.state == GroupState::Pending).then_some(group.ready);
            let reserved = state.reserve_groups();
            state.runnable(&mut runnable);
            (failed, reserved, pending_ready)
        };
        for start in failed {
            start(None);
        }
        if let Some(ready) = pending_ready {
            ready.finish(Err(Error::PlacementGroup {
                group: format!("{id}"),
                reason: "it was removed before it was reserved".to_owned(),
            }));
        }
        for ready in reserved {
            ready.finish(Ok(crate::object_store::Object::new(())));
        }
        self.start(&mut runnable);
    }

    /// The demand of a task placed in bundle `index` of group `id`, checked against the
    /// bundle's resources.
    pub(crate) fn demand_in(
        &self,
        function: &str,
        cpus: f64,
        gpus: f64,
        custom: &[(String, f64)],
        (id, index): (GroupId, usize),
    ) -> Result<Demand> {
        let state = self.state.lock();
        let Some(group) = state.groups.list.iter().find(|g| g.info.id == id) else {
            return Err(Error::PlacementGroup {
                group: format!("{id}"),
                reason: format!(
                    "task `{function}` is placed in it, but it was removed; place the task in a \
                     group that exists"
                ),
            });
        };
        let label = group.info.name.clone().unwrap_or_else(|| format!("{id}"));
        let Some(&number) = group.pools.get(index) else {
            return Err(Error::PlacementGroup {
                group: label,
                reason: format!(
                    "task `{function}` is placed in bundle {index}, but the group has {} \
                     bundles (numbered from 0)",
                    group.pools.len()
                ),
            });
        };
        let limit = state.bundles.get(&number).map(|p| p.total.clone());
        drop(state);
        let limit = limit.unwrap_or_else(|| vec![0; self.total.len()]);
        let exceeds = |resource: &str, requested: f64, available: f64| Error::PlacementGroup {
            group: label.clone(),
            reason: format!(
                "task `{function}` asks for {requested} {resource} but bundle {index} holds \
                 {available}; ask for less, or make the bundle larger"
            ),
        };
        let amounts = self.amounts(function, cpus, gpus, custom, &limit, &exceeds)?;
        Ok(Demand::new(amounts, number))
    }

    /// The live groups (pending or created), oldest first.
    pub(crate) fn groups(&self) -> Vec<GroupInfo> {
        let state = self.state.lock();
        state.groups.list.iter().map(|g| g.info.clone()).collect()
    }

    /// A live group by id or name, with its `ready` cell.
    pub(crate) fn group(
        &self,
        find: impl Fn(&GroupInfo) -> bool,
    ) -> Option<(GroupInfo, Arc<Cell>)> {
        let state = self.state.lock();
        let group = state.groups.list.iter().find(|g| find(&g.info))?;
        Some((group.info.clone(), Arc::clone(&group.ready)))
    }

    /// A demand's amounts by resource name.
    pub(super) fn describe(&self, demand: &Demand) -> Vec<(String, f64)> {
        demand
            .amounts
            .iter()
            .map(|&(i, amount)| (self.names[i].clone(), amount as f64 / MILLI))
            .collect()
    }
}
