//! Placement groups on Ray: Ray's C++ placement-group API behind the backend, and the task that
//! resolves a group's `ready`.

use std::sync::Arc;
use std::time::Instant;

use super::{error, ffi, Backend, TaskPolicy};
use crate::error::{Error, Result};
use crate::object_store::codec::frame;
use crate::object_store::Cell;
use crate::placement_group::{Bundle, Placement, PlacementGroup, PlacementGroupBuilder, Strategy};
use crate::runtime::RuntimeCore;

/// The registered id of the task that resolves a placement group's `ready` on Ray (Ray's
/// `bundle_reservation_check`): it asks for a sliver of the group's own `bundle` resource, which
/// exists only once every bundle is reserved, and a worker answers it without the registry.
pub(crate) const GROUP_READY: &str = "rustyray::placement_group::ready";

/// The bundle counts of the placement groups this process made and has not removed, by Ray's
/// id: Ray 2.60's C++ API loses a group's bundles when it looks the group up by name (its
/// `GeneratePlacementGroup` copies an empty list), so a group found by name takes its count
/// from here, or 0 for a group another process made.
static BUNDLE_COUNTS: parking_lot::Mutex<Vec<(Vec<u8>, usize)>> =
    parking_lot::Mutex::new(Vec::new());

/// Ray's number for a strategy (its `PlacementStrategy`).
fn strategy_number(strategy: Strategy) -> i32 {
    match strategy {
        Strategy::Pack => 0,
        Strategy::Spread => 1,
        Strategy::StrictPack => 2,
        Strategy::StrictSpread => 3,
    }
}

fn strategy_of(number: i32) -> Strategy {
    match number {
        1 => Strategy::Spread,
        2 => Strategy::StrictPack,
        3 => Strategy::StrictSpread,
        _ => Strategy::Pack,
    }
}

/// Where the shim places a task or actor placed in a group (`None`: anywhere).
pub(super) fn place(placement: Option<&Placement>) -> Result<ffi::Place<'_>> {
    let Some(placement) = placement else {
        return Ok(ffi::Place::ANYWHERE);
    };
    Ok(ffi::Place {
        group: placement.group.on_ray()?,
        bundle: i32::try_from(placement.bundle).unwrap_or(i32::MAX),
    })
}

/// Placement groups on the cluster.
impl Backend {
    /// Creates the group `builder` describes on the cluster.
    pub(crate) fn create_group_from(
        &self,
        shared: &RuntimeCore,
        this: PlacementGroupBuilder,
    ) -> Result<PlacementGroup> {
        let refuse = |reason: String| Error::PlacementGroup {
            group: this
                .name
                .as_ref()
                .map_or_else(|| "(unnamed)".to_owned(), |n| format!("`{n}`")),
            reason,
        };
        if this.bundles.is_empty() {
            return Err(refuse(
                "it has no bundles; add at least one with `.bundle(..)`".into(),
            ));
        }
        let bundles: Vec<Vec<(&str, f64)>> = this.bundles.iter().map(Bundle::named).collect();
        if let Some(index) = bundles.iter().position(Vec::is_empty) {
            return Err(refuse(format!(
                "bundle {index} asks for nothing; give it CPUs, GPUs or a custom resource"
            )));
        }
        let name = this.name.as_deref().unwrap_or("");
        let (id, ready) = self.create_group(shared, name, this.strategy, &bundles)?;
        Ok(PlacementGroup::on_ray(
            id,
            this.name,
            this.strategy,
            this.bundles.len(),
            ready,
        ))
    }

    /// Creates a placement group of `bundles` (each, its resources by Ray's names); returns
    /// Ray's id for it and the cell of its `ready`.
    pub(crate) fn create_group(
        &self,
        shared: &RuntimeCore,
        name: &str,
        strategy: Strategy,
        bundles: &[Vec<(&str, f64)>],
    ) -> Result<(Vec<u8>, Arc<Cell>)> {
        let started = Instant::now();
        let resources: Vec<ffi::Resource> = bundles
            .iter()
            .flatten()
            .map(|(name, amount)| ffi::Resource::new(name, *amount))
            .collect();
        let sizes: Vec<usize> = bundles.iter().map(Vec::len).collect();
        let what = if name.is_empty() {
            "placement group"
        } else {
            name
        };
        let id = ffi::create_placement_group(name, strategy_number(strategy), &resources, &sizes)
            .map_err(|e| error(what, e, started))?;
        BUNDLE_COUNTS.lock().push((id.clone(), bundles.len()));
        let ready = self.group_ready(shared, &id);
        Ok((id, ready))
    }

    /// Submits the reservation check of group `id` (see [`GROUP_READY`]).
    fn group_ready(&self, shared: &RuntimeCore, id: &[u8]) -> Arc<Cell> {
        let started = Instant::now();
        let what = "placement group ready";
        let check = frame::encode(&TaskPolicy {
            max_retries: 0,
            retry_exceptions: false,
            cancel: super::cancel::Scope::for_new_task(),
            num_returns: None,
        })
        .map_err(|e| (ffi::Failure::Other, e.to_string()))
        .and_then(|policy| {
            let sliver = [ffi::Resource::new("bundle", 0.001)];
            let place = ffi::Place {
                group: id,
                bundle: -1,
            };
            let args = [ffi::Arg::value(&policy)];
            ffi::submit(GROUP_READY, &args, &sliver, what, place)
        });
        match check {
            Ok(object) => self.enter(shared, object, what.into()),
            Err(e) => self.failed(shared, error(what, e, started)),
        }
    }

    /// Removes the group Ray knows as `id`.
    pub(crate) fn remove_group(&self, id: &[u8]) -> Result<()> {
        let started = Instant::now();
        ffi::remove_placement_group(id).map_err(|e| error("placement group", e, started))?;
        BUNDLE_COUNTS.lock().retain(|(group, _)| group != id);
        Ok(())
    }

    /// The live group Ray knows under `name`.
    pub(crate) fn find_group(
        &self,
        shared: &RuntimeCore,
        name: &str,
    ) -> Result<Option<PlacementGroup>> {
        let started = Instant::now();
        let found = ffi::get_placement_group(name).map_err(|e| error(name, e, started))?;
        Ok(found.map(|(id, strategy, listed)| {
            let known = BUNDLE_COUNTS
                .lock()
                .iter()
                .find(|(g, _)| *g == id)
                .map(|(_, n)| *n);
            let bundles = known.unwrap_or(listed);
            let ready = self.group_ready(shared, &id);
            PlacementGroup::on_ray(
                id,
                Some(name.to_owned()),
                strategy_of(strategy),
                bundles,
                ready,
            )
        }))
    }
}
