//! Placement groups (group `groups`): as Ray's microbenchmark does, create groups of one tiny
//! bundle (all fit at once), wait for each to be ready, then remove them all.

use rustyray::{Bundle, PlacementGroup};

use crate::measure::{paired, Effort, Line};
use crate::workloads::line;

pub(crate) fn lines(e: Effort) -> Vec<Line> {
    let groups = e.size(1_000, 100); // a thousandth of a CPU each: all fit in one
    let create_remove = || {
        let made: Vec<PlacementGroup> = (0..groups)
            .map(|_| {
                PlacementGroup::builder()
                    .bundle(Bundle::new().cpus(0.001))
                    .create()
                    .unwrap()
            })
            .collect();
        for pg in &made {
            assert!(pg.wait(std::time::Duration::from_secs(30)).unwrap());
        }
        for pg in &made {
            rustyray::remove_placement_group(pg).unwrap();
        }
    };
    // The floor: the same bookkeeping with a plain locked map, one entry per group.
    let map = parking_lot::Mutex::new(std::collections::HashMap::new());
    let floor = || {
        for id in 0..groups {
            map.lock().insert(id, vec![1000_i64]);
        }
        for id in 0..groups {
            map.lock().remove(&id);
        }
    };
    let (ours, raw) = paired(e, groups, create_remove, floor);
    vec![line(
        "placement group create/removal",
        "groups",
        ours,
        Some(("a locked HashMap insert + remove", raw)),
    )]
}
