//! Placement groups reserved in this process's scheduler.

use std::sync::Arc;

use super::Embedded;
use crate::error::Result;
use crate::placement_group::{PlacementGroup, PlacementGroupBuilder};
use crate::runtime::RuntimeCore;
use crate::scheduler::groups::BundleRequest;
use crate::scheduler::GroupId;

impl Embedded {
    /// Reserves the group `builder` describes in this process's scheduler.
    pub(crate) fn create_group(
        &self,
        shared: &RuntimeCore,
        builder: PlacementGroupBuilder,
    ) -> Result<PlacementGroup> {
        let ready = shared.store().insert_pending(None);
        let requests: Vec<BundleRequest<'_>> = builder
            .bundles
            .iter()
            .map(|b| BundleRequest {
                cpus: b.cpus,
                gpus: b.gpus,
                custom: &b.resources,
            })
            .collect();
        let id = self.scheduler.create_group(
            builder.name.clone(),
            builder.strategy,
            &requests,
            Arc::clone(&ready),
        )?;
        let bundles = builder.bundles.len();
        Ok(PlacementGroup::here(
            id,
            builder.name,
            builder.strategy,
            bundles,
            ready,
        ))
    }

    /// The live group named `name` in this process's scheduler.
    pub(crate) fn find_group(&self, name: &str) -> Option<PlacementGroup> {
        let (info, ready) = self.scheduler.group(|g| g.name.as_deref() == Some(name))?;
        let bundles = info.bundles.len();
        Some(PlacementGroup::here(
            info.id,
            info.name,
            info.strategy,
            bundles,
            ready,
        ))
    }

    /// Gives a group's reservation back (again: nothing).
    pub(crate) fn remove_group(&self, group: GroupId) {
        self.scheduler.remove_group(group);
    }

    /// Every group of this process's scheduler, for the state API.
    pub(crate) fn groups(&self) -> Vec<crate::PlacementGroupInfo> {
        self.scheduler
            .groups()
            .into_iter()
            .map(Into::into)
            .collect()
    }
}
