//! The `ray` backend's face when the `ray` feature is off: the same items, none of which can
//! exist, so the embedded runtime compiles to exactly what it would be without them.

use std::sync::Arc;
use std::time::Instant;

use crate::actor::{ActorId, ActorOptions};
use crate::error::{Error, Result};
use crate::object_ref::ObjectRef;
use crate::object_store::{Cell, Value};
use crate::runtime::Shared;
use crate::task::{ArgSlot, TaskOptions};

/// Never built: a runtime asking for Ray fails to start without the feature.
#[derive(Debug)]
pub(crate) enum Backend {}

/// Never recorded.
pub(crate) enum Wire {}

/// Never built.
#[derive(Debug)]
pub(crate) enum RemoteActor {}

impl Wire {
    #[inline(always)]
    pub(crate) fn start() -> Option<Wire> {
        None
    }

    pub(crate) fn push<T: Value>(&mut self, _slot: &ArgSlot<T>) {
        match *self {}
    }
}

#[allow(clippy::unused_self)]
impl Backend {
    pub(crate) fn start(config: &crate::Config) -> Result<Option<Backend>> {
        // `Config::validate` explains the missing feature; a global runtime started from
        // RUSTYRAY_ADDRESS reports it through this error.
        match config.ray_target() {
            None => Ok(None),
            Some(_) => Err(config.validate().err().unwrap_or_else(|| {
                Error::InvalidArgument("rustyray was built without its `ray` feature".to_owned())
            })),
        }
    }

    pub(crate) fn put<T: Value>(&self, _: &Shared, _: &T) -> Result<Arc<Cell>> {
        match *self {}
    }

    pub(crate) fn get<T: Value>(&self, _: &ObjectRef<T>, _: Option<Instant>) -> Result<T> {
        match *self {}
    }

    pub(crate) fn wait<T>(&self, _: &[ObjectRef<T>], _: usize, _: Option<Instant>) -> Vec<bool> {
        match *self {}
    }

    pub(crate) fn submit(
        &self,
        _: &Shared,
        _: Wire,
        _: &'static str,
        _: &str,
        _: &TaskOptions,
    ) -> Arc<Cell> {
        match *self {}
    }

    pub(crate) fn create_actor(
        &self,
        _: &Shared,
        _: Wire,
        _: &'static str,
        _: &str,
        _: &ActorOptions,
    ) -> Result<ActorId> {
        match *self {}
    }

    pub(crate) fn call(
        &self,
        _: &Shared,
        _: &RemoteActor,
        _: Wire,
        _: &'static str,
        _: &str,
    ) -> Arc<Cell> {
        match *self {}
    }

    pub(crate) fn get_actor(&self, _: &Shared, _: &str, _: &str) -> Result<ActorId> {
        match *self {}
    }
}

impl RemoteActor {
    pub(crate) fn kill(&self) -> Result<()> {
        match *self {}
    }

    pub(crate) fn describe_class(&self) -> String {
        match *self {}
    }
}

pub(crate) fn disconnect() {}
