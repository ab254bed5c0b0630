//! The cluster's nodes as Ray's control store (GCS) lists them, and whether any live node can
//! run a demand.
//!
//! Ray keeps a task whose resources no live node has pending for good (an autoscaler may add
//! such a node). A driver waiting in `get` for it would hang silently. So while a `get` waits
//! (between its slices, see `watch.rs`), it asks here whether the object's task, or one it
//! waits for, can still run: a demand that only dead nodes could meet fails the `get` with
//! [`Error::Unschedulable`](crate::Error::Unschedulable); one that no node ever met is warned
//! about once, as Ray's Python driver does, and waited for.
//!
//! The node list is read through the shim (`rr_nodes`, Ray's `GlobalStateAccessor`) at most
//! once per [`SLICE`](super::watch::SLICE), however many threads wait.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::Mutex;

use super::objects::{Needs, RayObject};
use super::{ffi, watch};
use crate::error::Error;
use crate::object_store::codec::protobuf::{Fields, Value};

/// How many arguments deep a `get` looks for a task that cannot run.
const MAX_DEPTH: usize = 8;

/// Why waiting longer for `object` is useless, if it is: its task, or a task whose object it
/// waits for (an argument's, while this process holds that argument), needs resources that
/// only nodes that died had.
pub(crate) fn stuck(object: &RayObject) -> Option<Error> {
    let needs = object.needs()?;
    let nodes = current()?;
    stuck_on(&object.origin, needs, &nodes, 0)
}

fn stuck_on(what: &str, needs: &Needs, nodes: &[Node], depth: usize) -> Option<Error> {
    match fit(nodes, &needs.demand) {
        Fit::Alive => {}
        Fit::OnlyDead => {
            return Some(Error::Unschedulable {
                function: what.to_owned(),
                demand: describe(&needs.demand),
            })
        }
        Fit::Never => {
            if !needs.warned.swap(true, Ordering::Relaxed) {
                warn_never_met(what, &needs.demand);
            }
        }
    }
    if depth >= MAX_DEPTH {
        return None;
    }
    for up in needs.upstream.iter().filter_map(Weak::upgrade) {
        let (Some(up_needs), Some(id)) = (up.needs(), up.id()) else {
            continue;
        };
        // An argument whose object exists needs nothing more.
        if ffi::wait(&[id], 1, 0).is_ok_and(|ready| ready.first() == Some(&true)) {
            continue;
        }
        if let Some(error) = stuck_on(&up.origin, up_needs, nodes, depth + 1) {
            return Some(error);
        }
    }
    None
}

/// Warns that `what` needs `demand`, which no node has had: Ray keeps it pending.
fn warn_never_met(what: &str, demand: &[(String, f64)]) {
    tracing::warn!(
        target: "rustyray::ray",
        "`{what}` needs {}, which no node of the Ray cluster has: it stays pending until a node \
         with it joins (as in Ray); lower the request, or start such a node",
        describe(demand)
    );
}

/// At submission, as Ray's own warning comes when it schedules: warns once per name when a
/// task's or actor's demand (other than the default, one CPU) is one no node has had. The
/// node list is read at most once per slice.
pub(crate) fn warn_if_never_met(what: &str, demand: &[(String, f64)]) {
    let default = matches!(demand, [(cpu, amount)] if cpu == "CPU" && *amount == 1.0);
    if default || demand.is_empty() {
        return;
    }
    static WARNED: Mutex<Option<rustc_hash::FxHashSet<String>>> = Mutex::new(None);
    if WARNED
        .lock()
        .as_ref()
        .is_some_and(|warned| warned.contains(what))
    {
        return;
    }
    let Some(nodes) = current() else {
        return;
    };
    if fit(&nodes, demand) == Fit::Never
        && WARNED
            .lock()
            .get_or_insert_with(Default::default)
            .insert(what.to_owned())
    {
        warn_never_met(what, demand);
    }
}

/// A demand as people write it: `1 CPU, 4 second_node`.
fn describe(demand: &[(String, f64)]) -> String {
    let parts: Vec<String> = demand
        .iter()
        .map(|(name, amount)| format!("{amount} {name}"))
        .collect();
    parts.join(", ")
}

/// A node as far as scheduling is concerned.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub(crate) address: String,
    pub(crate) alive: bool,
    pub(crate) head: bool,
    pub(crate) resources: Vec<(String, f64)>,
}

impl Node {
    /// Whether the node has at least `demand` in total.
    fn can_hold(&self, demand: &[(String, f64)]) -> bool {
        demand.iter().all(|(name, amount)| {
            self.resources
                .iter()
                .any(|(have, total)| have == name && total >= amount)
        })
    }
}

/// Which nodes could ever run a demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fit {
    /// A live node has the resources.
    Alive,
    /// Only nodes that died had them.
    OnlyDead,
    /// No node the cluster has known had them.
    Never,
}

/// How `demand` fits the nodes `nodes`.
pub(crate) fn fit(nodes: &[Node], demand: &[(String, f64)]) -> Fit {
    let mut dead = false;
    for node in nodes.iter().filter(|n| n.can_hold(demand)) {
        if node.alive {
            return Fit::Alive;
        }
        dead = true;
    }
    if dead {
        Fit::OnlyDead
    } else {
        Fit::Never
    }
}

/// The cluster's nodes, read at most once per slice; `None` if this process cannot see them.
pub(crate) fn current() -> Option<Arc<Vec<Node>>> {
    static LAST: Mutex<Option<(Instant, Arc<Vec<Node>>)>> = Mutex::new(None);
    let mut last = LAST.lock();
    if let Some((read, nodes)) = &*last {
        if read.elapsed() < watch::SLICE {
            return Some(Arc::clone(nodes));
        }
    }
    let nodes = match ffi::nodes() {
        Ok(records) => Arc::new(records.iter().filter_map(|r| parse(r)).collect::<Vec<_>>()),
        Err((_, error)) => {
            tracing::debug!(target: "rustyray::ray", %error, "cannot list the cluster's nodes");
            return None;
        }
    };
    *last = Some((Instant::now(), Arc::clone(&nodes)));
    Some(nodes)
}

/// Reads the fields of a `GcsNodeInfo` (Ray 2.60's `gcs.proto`) that scheduling needs:
/// `node_manager_address` (2), `state` (7: 0 alive, 1 dead), `resources_total` (11, a map of
/// name to amount) and `is_head_node` (25). `None` for bytes that are no such record.
pub(crate) fn parse(bytes: &[u8]) -> Option<Node> {
    let mut node = Node {
        address: String::new(),
        alive: true,
        head: false,
        resources: Vec::new(),
    };
    for field in Fields(bytes) {
        match field? {
            (2, Value::Bytes(address)) => {
                node.address = String::from_utf8(address.to_vec()).ok()?
            }
            (7, Value::Varint(state)) => node.alive = state == 0,
            (25, Value::Varint(head)) => node.head = head != 0,
            (11, Value::Bytes(entry)) => {
                let (mut name, mut amount) = (None, 0.0);
                for field in Fields(entry) {
                    match field? {
                        (1, Value::Bytes(key)) => {
                            name = Some(String::from_utf8(key.to_vec()).ok()?)
                        }
                        (2, Value::Fixed64(bits)) => amount = f64::from_bits(bits),
                        _ => {}
                    }
                }
                node.resources.push((name?, amount));
            }
            _ => {}
        }
    }
    Some(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn bytes_field(field: u64, bytes: &[u8], out: &mut Vec<u8>) {
        varint(field << 3 | 2, out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }

    fn record(address: &str, dead: bool, head: bool, resources: &[(&str, f64)]) -> Vec<u8> {
        let mut out = Vec::new();
        bytes_field(1, &[7; 28], &mut out);
        bytes_field(2, address.as_bytes(), &mut out);
        varint(5 << 3, &mut out);
        varint(40_000, &mut out);
        varint(7 << 3, &mut out);
        varint(u64::from(dead), &mut out);
        for (name, amount) in resources {
            let mut entry = Vec::new();
            bytes_field(1, name.as_bytes(), &mut entry);
            varint(2 << 3 | 1, &mut entry);
            entry.extend_from_slice(&amount.to_bits().to_le_bytes());
            bytes_field(11, &entry, &mut out);
        }
        varint(25 << 3, &mut out);
        varint(u64::from(head), &mut out);
        out
    }

    #[test]
    fn node_records_read_back_and_demands_fit_live_dead_or_no_nodes() {
        let head = parse(&record("10.0.0.1", false, true, &[("CPU", 2.0)])).unwrap();
        assert_eq!(
            head,
            Node {
                address: "10.0.0.1".to_owned(),
                alive: true,
                head: true,
                resources: vec![("CPU".to_owned(), 2.0)],
            }
        );
        let second = parse(&record(
            "127.0.0.2",
            true,
            false,
            &[("CPU", 1.0), ("gpu_box", 4.0)],
        ));
        let nodes = [head, second.unwrap()];
        let demand = |pairs: &[(&str, f64)]| -> Vec<(String, f64)> {
            pairs.iter().map(|(n, a)| ((*n).to_owned(), *a)).collect()
        };
        assert_eq!(fit(&nodes, &demand(&[("CPU", 1.0)])), Fit::Alive);
        assert_eq!(fit(&nodes, &demand(&[("gpu_box", 1.0)])), Fit::OnlyDead);
        assert_eq!(
            fit(&nodes, &demand(&[("CPU", 1.0), ("gpu_box", 5.0)])),
            Fit::Never
        );
        assert_eq!(fit(&nodes, &demand(&[("TPU", 1.0)])), Fit::Never);
        assert_eq!(fit(&nodes, &[]), Fit::Alive);
    }

    #[test]
    fn malformed_records_are_refused_not_misread() {
        let good = record("10.0.0.1", false, true, &[("CPU", 2.0)]);
        for cut in 1..good.len() {
            // Every cut either fails or reads a prefix of the fields; it never panics.
            let _ = parse(&good[..cut]);
        }
        assert!(parse(&[0x0b]).is_none(), "wire type 3 is refused");
    }
}
