//! Placement groups and GPU ids on the embedded runtime.

use std::sync::Barrier;
use std::time::{Duration, Instant};

mod common;

use common::gates::open;
use rustyray::{Bundle, Config, Error, PlacementGroup, PlacementGroupState, Runtime, Strategy};

const PATIENCE: Duration = Duration::from_secs(30);
const A_MOMENT: Duration = Duration::from_millis(300);

#[rustyray::remote]
fn wait_at(gate: u64) -> u64 {
    common::gates::wait_at(gate);
    gate
}

#[rustyray::remote]
fn one() -> u64 {
    1
}

static TWO_AT_ONCE: Barrier = Barrier::new(2);

/// Meets the other one at the barrier (so both hold their GPU at once), then says which it has.
#[rustyray::remote(num_gpus = 1)]
fn whole_gpu() -> Vec<usize> {
    TWO_AT_ONCE.wait();
    rustyray::gpu_ids()
}

#[rustyray::remote(num_gpus = 0.5)]
fn half_gpu() -> Vec<usize> {
    rustyray::gpu_ids()
}

#[test]
fn whole_gpus_are_distinct_and_fractions_share() {
    let rt = Runtime::new(Config::default().num_cpus(2).num_gpus(2)).unwrap();
    let _guard = rt.enter();
    let (a, b) = (whole_gpu::remote(), whole_gpu::remote());
    let (a, b) = (
        rustyray::get_timeout(&a, PATIENCE).unwrap(),
        rustyray::get_timeout(&b, PATIENCE).unwrap(),
    );
    assert_eq!((a.len(), b.len()), (1, 1));
    assert_ne!(a, b, "two whole-GPU tasks at once hold different GPUs");
    let halves: Vec<Vec<usize>> =
        rustyray::get_all(&[half_gpu::remote(), half_gpu::remote()]).unwrap();
    assert!(halves.iter().all(|ids| ids.len() == 1));
    assert!(rustyray::get(&one::remote()).is_ok());
    assert!(rustyray::gpu_ids().is_empty(), "outside a task");
}

#[test]
fn a_reservation_keeps_its_resources_from_outside_tasks_until_removed() {
    let rt = Runtime::new(Config::default().num_cpus(2)).unwrap();
    let _guard = rt.enter();
    let pg = PlacementGroup::builder()
        .bundle(Bundle::new().cpus(1.0))
        .bundle(Bundle::new().cpus(1.0))
        .create()
        .unwrap();
    assert!(
        pg.wait(PATIENCE).unwrap(),
        "two CPUs free: reserved at once"
    );
    let outside = one::remote();
    assert!(
        matches!(
            rustyray::get_timeout(&outside, A_MOMENT),
            Err(Error::Timeout(_))
        ),
        "both CPUs are the group's"
    );
    // Inside the group, its bundles run tasks.
    let inside: Vec<_> = (0..2)
        .map(|i| one::options().placement_group(&pg, i).remote())
        .collect();
    assert_eq!(rustyray::get_all(&inside).unwrap(), [1, 1]);
    rustyray::remove_placement_group(&pg).unwrap();
    assert_eq!(rustyray::get_timeout(&outside, PATIENCE), Ok(1));
    rustyray::remove_placement_group(&pg).unwrap(); // again: nothing
}

#[test]
fn infeasible_groups_fail_at_once_naming_the_bundle_and_resource() {
    let rt = Runtime::new(Config::default().num_cpus(2).resource("disk", 1.0)).unwrap();
    let _guard = rt.enter();
    let started = Instant::now();
    let cases = [
        (
            PlacementGroup::builder().bundle(Bundle::new().cpus(3.0)),
            "bundle 0 asks for 3 CPU",
        ),
        (
            PlacementGroup::builder()
                .bundle(Bundle::new().cpus(1.0))
                .bundle(Bundle::new().resource("disk", 2.0)),
            "bundle 1 asks for 2 disk",
        ),
        (
            PlacementGroup::builder()
                .bundle(Bundle::new().cpus(1.5))
                .bundle(Bundle::new().cpus(1.5)),
            "together need more CPU",
        ),
        (
            PlacementGroup::builder()
                .bundle(Bundle::new().cpus(1.0))
                .bundle(Bundle::new().cpus(1.0))
                .strategy(Strategy::StrictSpread),
            "StrictSpread",
        ),
        (PlacementGroup::builder(), "no bundles"),
        (
            PlacementGroup::builder().bundle(Bundle::new()),
            "asks for nothing",
        ),
    ];
    for (builder, expected) in cases {
        let error = builder.create().unwrap_err();
        assert!(matches!(error, Error::PlacementGroup { .. }), "{error:?}");
        assert!(error.to_string().contains(expected), "{error}");
    }
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(
        rustyray::state::placement_groups().is_empty(),
        "nothing was made"
    );
}

#[test]
fn tasks_in_a_bundle_are_checked_against_it() {
    let rt = Runtime::new(Config::default().num_cpus(2)).unwrap();
    let _guard = rt.enter();
    let pg = PlacementGroup::builder()
        .bundle(Bundle::new().cpus(1.0))
        .name("small")
        .create()
        .unwrap();
    let too_big = one::options()
        .num_cpus(2.0)
        .placement_group(&pg, 0)
        .remote();
    let error = rustyray::get(&too_big).unwrap_err().to_string();
    assert!(error.contains("bundle 0 holds 1"), "{error}");
    let no_such = one::options().placement_group(&pg, 3).remote();
    let error = rustyray::get(&no_such).unwrap_err().to_string();
    assert!(error.contains("has 1 bundles"), "{error}");
    rustyray::remove_placement_group(&pg).unwrap();
    let removed = one::options().placement_group(&pg, 0).remote();
    assert!(matches!(
        rustyray::get(&removed),
        Err(Error::PlacementGroup { .. })
    ));
}

#[test]
fn removing_a_group_fails_what_is_queued_in_it() {
    let rt = Runtime::new(Config::default().num_cpus(2)).unwrap();
    let _guard = rt.enter();
    let pg = PlacementGroup::builder()
        .bundle(Bundle::new().cpus(1.0))
        .create()
        .unwrap();
    let running = wait_at::options().placement_group(&pg, 0).remote(1);
    let queued = one::options().placement_group(&pg, 0).remote();
    assert!(
        matches!(
            rustyray::get_timeout(&queued, A_MOMENT),
            Err(Error::Timeout(_))
        ),
        "the bundle's one CPU is taken"
    );
    rustyray::remove_placement_group(&pg).unwrap();
    let error = rustyray::get_timeout(&queued, PATIENCE).unwrap_err();
    assert!(matches!(error, Error::PlacementGroup { .. }), "{error:?}");
    // The running task finishes; its CPU goes back to the runtime, not to the removed group.
    open(1);
    assert_eq!(rustyray::get_timeout(&running, PATIENCE), Ok(1));
    let both = one::options().num_cpus(2.0).remote();
    assert_eq!(rustyray::get_timeout(&both, PATIENCE), Ok(1));
}

#[test]
fn a_group_waits_for_its_resources_then_is_ready() {
    let rt = Runtime::new(Config::default().num_cpus(2)).unwrap();
    let _guard = rt.enter();
    let busy = wait_at::remote(2);
    let pg = PlacementGroup::builder()
        .bundle(Bundle::new().cpus(2.0))
        .name("waiting")
        .create()
        .unwrap();
    assert!(!pg.wait(A_MOMENT).unwrap(), "one CPU is busy");
    let listed = rustyray::state::placement_groups();
    assert_eq!(listed[0].state, PlacementGroupState::Pending);
    assert_eq!(listed[0].name.as_deref(), Some("waiting"));
    open(2);
    rustyray::get(&busy).unwrap();
    assert!(pg.wait(PATIENCE).unwrap());
    assert_eq!(
        rustyray::state::placement_groups()[0].state,
        PlacementGroupState::Created
    );
    let found = rustyray::get_placement_group("waiting").unwrap();
    assert_eq!(found, pg);
    let taken = PlacementGroup::builder()
        .bundle(Bundle::new().cpus(1.0))
        .name("waiting")
        .create()
        .unwrap_err();
    assert!(taken.to_string().contains("of that name exists"), "{taken}");
    rustyray::remove_placement_group(&found).unwrap();
    assert!(matches!(
        rustyray::get_placement_group("waiting"),
        Err(Error::NotFound { .. })
    ));
    // A group removed while it waits fails its `ready`.
    let hog = wait_at::options().num_cpus(2.0).remote(3);
    let never = PlacementGroup::builder()
        .bundle(Bundle::new().cpus(1.0))
        .create()
        .unwrap();
    rustyray::remove_placement_group(&never).unwrap();
    assert!(matches!(
        never.wait(PATIENCE),
        Err(Error::PlacementGroup { .. })
    ));
    open(3);
    rustyray::get(&hog).unwrap();
}

#[rustyray::actor]
struct Trainer;

#[rustyray::actor]
impl Trainer {
    fn new() -> Self {
        Trainer
    }

    fn gpus(&self) -> Vec<usize> {
        rustyray::gpu_ids()
    }

    async fn gpus_async(&self) -> Vec<usize> {
        rustyray::gpu_ids()
    }
}

#[test]
fn actors_hold_resources_and_run_in_bundles() {
    let rt = Runtime::new(Config::default().num_cpus(2).num_gpus(2)).unwrap();
    let _guard = rt.enter();
    // An actor with GPUs sees them in its sync and async methods, the same ones.
    let a = Trainer::options().num_gpus(1.0).remote();
    let b = Trainer::options().num_gpus(1.0).remote();
    let (ga, gb) = (
        rustyray::get(a.gpus()).unwrap(),
        rustyray::get(b.gpus()).unwrap(),
    );
    assert_eq!((ga.len(), gb.len()), (1, 1));
    assert_ne!(ga, gb, "two actors, two GPUs");
    assert_eq!(rustyray::get(a.gpus_async()).unwrap(), ga);
    // Both GPUs are held while the actors live: a GPU task waits until one is killed.
    let waiting = half_gpu::remote();
    assert!(matches!(
        rustyray::get_timeout(&waiting, A_MOMENT),
        Err(Error::Timeout(_))
    ));
    rustyray::kill(&a).unwrap();
    assert_eq!(rustyray::get_timeout(&waiting, PATIENCE).unwrap(), ga);
    drop(b);

    // An actor placed in a bundle holds that bundle's CPU; a task placed there waits.
    let pg = PlacementGroup::builder()
        .bundle(Bundle::new().cpus(1.0))
        .create()
        .unwrap();
    let placed = Trainer::options()
        .num_cpus(1.0)
        .placement_group(&pg, 0)
        .remote();
    assert!(rustyray::get(placed.gpus()).unwrap().is_empty());
    let task = one::options().placement_group(&pg, 0).remote();
    assert!(matches!(
        rustyray::get_timeout(&task, A_MOMENT),
        Err(Error::Timeout(_))
    ));
    rustyray::kill(&placed).unwrap();
    assert_eq!(rustyray::get_timeout(&task, PATIENCE), Ok(1));
    // An actor placed in a removed group dies, naming it.
    rustyray::remove_placement_group(&pg).unwrap();
    let orphan = Trainer::options().placement_group(&pg, 0).remote();
    let error = rustyray::get(orphan.gpus()).unwrap_err();
    assert!(error.to_string().contains("placement group"), "{error}");
}
