//! Placement groups: reserve a gang of resources, all or none, and run tasks inside it (Ray's
//! `ray.util.placement_group`).
//!
//! A group is a list of [`Bundle`]s. Creating it reserves every bundle at once, as soon as the
//! runtime has room for all of them; until then [`ready`](PlacementGroup::ready) is pending.
//! A task placed in a bundle (`options().placement_group(&pg, index)`) draws its resources from
//! that bundle only, so nothing outside the group can take them, and the group's tasks cannot
//! take more than it reserved. Removing the group gives its resources back and fails the tasks
//! still queued in it.
//!
//! ```
//! use rustyray::{Bundle, PlacementGroup, Strategy};
//!
//! #[rustyray::remote]
//! fn train(shard: u64) -> u64 {
//!     shard * 10
//! }
//!
//! # fn main() -> rustyray::Result<()> {
//! # let rt = rustyray::Runtime::new(rustyray::Config::default().num_cpus(4))?;
//! # let _guard = rt.enter();
//! let pg = PlacementGroup::builder()
//!     .bundle(Bundle::new().cpus(1.0))
//!     .bundle(Bundle::new().cpus(1.0))
//!     .strategy(Strategy::Pack)
//!     .name("trainers")
//!     .create()?;
//! rustyray::get(&pg.ready())?; // both bundles are reserved
//! let results: Vec<_> = (0..2)
//!     .map(|i| train::options().placement_group(&pg, i).remote(i as u64))
//!     .collect();
//! assert_eq!(rustyray::get_all(&results)?, [0, 10]);
//! assert_eq!(rustyray::get_placement_group("trainers")?, pg);
//! rustyray::remove_placement_group(&pg)?;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::object_ref::ObjectRef;
use crate::object_store::Cell;
use crate::runtime::{self};
pub use crate::scheduler::groups::{GroupState as PlacementGroupState, Strategy};
use crate::scheduler::{GroupId, GroupInfo};

/// One bundle of a placement group: resources reserved together on one node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bundle {
    pub(crate) cpus: f64,
    pub(crate) gpus: f64,
    pub(crate) resources: Vec<(String, f64)>,
}

impl Bundle {
    /// An empty bundle; give it at least one resource.
    pub fn new() -> Bundle {
        Bundle::default()
    }

    /// CPUs in the bundle (fractions allowed).
    pub fn cpus(mut self, n: f64) -> Self {
        self.cpus = n;
        self
    }

    /// GPUs in the bundle (a fraction, or whole GPUs).
    pub fn gpus(mut self, n: f64) -> Self {
        self.gpus = n;
        self
    }

    /// An amount of a custom resource in the bundle (added to any set before).
    pub fn resource(mut self, name: impl Into<String>, amount: f64) -> Self {
        self.resources.push((name.into(), amount));
        self
    }

    /// What it asks for, by Ray's resource names, leaving out what it asks none of.
    #[cfg_attr(not(feature = "ray"), allow(dead_code))]
    pub(crate) fn named(&self) -> Vec<(&str, f64)> {
        let known = [("CPU", self.cpus), ("GPU", self.gpus)];
        let custom = self.resources.iter().map(|(n, a)| (n.as_str(), *a));
        known
            .into_iter()
            .chain(custom)
            .filter(|(_, a)| *a > 0.0)
            .collect()
    }
}

/// Builds a placement group: its bundles, strategy and optional name. See [`PlacementGroup`].
#[derive(Debug, Clone, Default)]
#[must_use = "the group is made only by `create`"]
pub struct PlacementGroupBuilder {
    pub(crate) bundles: Vec<Bundle>,
    pub(crate) strategy: Strategy,
    pub(crate) name: Option<String>,
}

impl PlacementGroupBuilder {
    /// Adds a bundle.
    pub fn bundle(mut self, bundle: Bundle) -> Self {
        self.bundles.push(bundle);
        self
    }

    /// Adds several bundles.
    pub fn bundles(mut self, bundles: impl IntoIterator<Item = Bundle>) -> Self {
        self.bundles.extend(bundles);
        self
    }

    /// How the bundles are placed over nodes (default [`Strategy::Pack`]).
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Names the group, so [`get_placement_group`] finds it. Names are unique among live groups.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Creates the group: reserved at once if the runtime has room for every bundle, else as
    /// soon as it has (see [`PlacementGroup::ready`]). Fails at once, with
    /// [`Error::PlacementGroup`] naming the bundle and the resource, if it could never be
    /// reserved here: a bundle larger than the runtime, bundles larger together, or
    /// `StrictSpread` of several bundles on the embedded runtime's one node. (On a Ray
    /// cluster, Ray decides where bundles go, and a group no node can hold waits, as in Ray.)
    pub fn create(self) -> Result<PlacementGroup> {
        let shared = runtime::current();
        shared.check()?;
        shared.backend().create_group(&shared, self)
    }
}

/// Where a placement group's reservation is kept.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Reservation {
    /// In this process's scheduler, by number.
    Here(GroupId),
    /// On the Ray cluster, by Ray's id.
    #[cfg(feature = "ray")]
    Ray(Arc<[u8]>),
}

impl Reservation {
    /// The group's number in this process's scheduler.
    pub(crate) fn here(&self) -> Result<GroupId> {
        match self {
            Reservation::Here(id) => Ok(*id),
            #[cfg(feature = "ray")]
            Reservation::Ray(_) => Err(Error::InvalidArgument(
                "this placement group was made on a Ray cluster; use it with the runtime \
                 connected to that cluster"
                    .to_owned(),
            )),
        }
    }

    /// The group's id on the Ray cluster.
    #[cfg(feature = "ray")]
    pub(crate) fn on_ray(&self) -> Result<&[u8]> {
        match self {
            Reservation::Ray(id) => Ok(id),
            Reservation::Here(_) => Err(Error::InvalidArgument(
                "this placement group was made by an embedded runtime; use it with that runtime"
                    .to_owned(),
            )),
        }
    }
}

/// Where a task or actor was placed: bundle `bundle` of a group.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Placement {
    pub(crate) group: Reservation,
    pub(crate) bundle: usize,
}

impl Placement {
    /// The group's number in this process's scheduler, and the bundle.
    pub(crate) fn here(&self) -> Result<(GroupId, usize)> {
        Ok((self.group.here()?, self.bundle))
    }
}

/// A placement group: bundles of resources reserved together, all or none, for tasks and
/// actors placed in them (Ray's placement groups).
///
/// Cheap to clone; equal when it is the same group.
#[derive(Clone)]
pub struct PlacementGroup {
    reservation: Reservation,
    id: u64,
    name: Option<String>,
    strategy: Strategy,
    bundles: usize,
    ready: ObjectRef<()>,
}

impl PlacementGroup {
    /// Starts building a group.
    pub fn builder() -> PlacementGroupBuilder {
        PlacementGroupBuilder::default()
    }

    /// The group's number: in its runtime for an embedded group; on a Ray cluster, the first
    /// 8 bytes of Ray's id for it (the same for every handle to the group).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The group's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// How its bundles are placed.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// How many bundles it has (tasks are placed in bundle `0..bundle_count()`).
    pub fn bundle_count(&self) -> usize {
        self.bundles
    }

    /// A ref that resolves when every bundle is reserved (Ray's `pg.ready()`), or fails if the
    /// group is removed first.
    pub fn ready(&self) -> ObjectRef<()> {
        self.ready.clone()
    }

    /// Waits up to `timeout` for the reservation: `Ok(true)` once reserved, `Ok(false)` if the
    /// time ran out, the error if the group was removed first (Ray's `pg.wait(timeout)`).
    pub fn wait(&self, timeout: Duration) -> Result<bool> {
        match crate::api::get_timeout(&self.ready, timeout) {
            Ok(()) => Ok(true),
            Err(Error::Timeout(_)) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Where a task placed in bundle `index` draws its resources from.
    pub(crate) fn placement(&self, index: usize) -> Placement {
        Placement {
            group: self.reservation.clone(),
            bundle: index,
        }
    }

    /// Where its reservation is kept.
    pub(crate) fn reservation(&self) -> &Reservation {
        &self.reservation
    }

    /// A group of this process's scheduler, numbered `id`, whose `ready` resolves once it is
    /// reserved.
    pub(crate) fn here(
        id: GroupId,
        name: Option<String>,
        strategy: Strategy,
        bundles: usize,
        ready: Arc<Cell>,
    ) -> PlacementGroup {
        PlacementGroup {
            reservation: Reservation::Here(id),
            id,
            name,
            strategy,
            bundles,
            ready: ObjectRef::from_new_cell(ready),
        }
    }

    /// A group on the Ray cluster, known by Ray's `id` (its number is the id's first 8 bytes,
    /// the same for every handle to it), whose `ready` is the cell of Ray's reservation check.
    #[cfg(feature = "ray")]
    pub(crate) fn on_ray(
        id: Vec<u8>,
        name: Option<String>,
        strategy: Strategy,
        bundles: usize,
        ready: Arc<Cell>,
    ) -> PlacementGroup {
        let mut number = [0u8; 8];
        let head = id.len().min(8);
        number[..head].copy_from_slice(&id[..head]);
        PlacementGroup {
            reservation: Reservation::Ray(id.into()),
            id: u64::from_le_bytes(number),
            name,
            strategy,
            bundles,
            ready: ObjectRef::from_new_cell(ready),
        }
    }
}

impl PartialEq for PlacementGroup {
    fn eq(&self, other: &Self) -> bool {
        // Embedded numbers are per runtime: the same `ready` tells the same runtime's group.
        let embedded = matches!(self.reservation, Reservation::Here(_));
        self.reservation == other.reservation && (!embedded || self.ready.id() == other.ready.id())
    }
}

impl fmt::Debug for PlacementGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlacementGroup")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("strategy", &self.strategy)
            .field("bundles", &self.bundles)
            .finish()
    }
}

/// Removes a placement group (Ray's `remove_placement_group`): its free resources go back to
/// the runtime at once, those held by its running tasks when they end; tasks still queued in it
/// fail with [`Error::PlacementGroup`], and so does its `ready` if it was still waiting.
/// Removing it again does nothing.
pub fn remove_placement_group(pg: &PlacementGroup) -> Result<()> {
    let shared = runtime::current();
    shared.backend().remove_group(pg.reservation())
}

/// The live placement group named `name` (Ray's `get_placement_group`), or
/// [`Error::NotFound`].
pub fn get_placement_group(name: &str) -> Result<PlacementGroup> {
    let shared = runtime::current();
    shared
        .backend()
        .find_group(&shared, name)?
        .ok_or_else(|| Error::NotFound {
            what: format!("placement group `{name}`"),
        })
}

/// One placement group, as [`state::placement_groups`](crate::state::placement_groups) lists it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PlacementGroupInfo {
    /// The group's number.
    pub id: u64,
    /// Its name, if it has one.
    pub name: Option<String>,
    /// How its bundles are placed.
    pub strategy: Strategy,
    /// Pending or created.
    pub state: PlacementGroupState,
    /// Each bundle's resources, by name.
    pub bundles: Vec<Vec<(String, f64)>>,
}

impl From<GroupInfo> for PlacementGroupInfo {
    fn from(info: GroupInfo) -> Self {
        PlacementGroupInfo {
            id: info.id,
            name: info.name,
            strategy: info.strategy,
            state: info.state,
            bundles: info.bundles,
        }
    }
}
