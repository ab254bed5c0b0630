//! The state API: tasks through every state, filters, objects, actors and the summary.

mod common;

use std::time::Duration;

use rustyray::state::{self, ActorState, ObjectState, TaskFilter, TaskState};
use rustyray::task::TaskBuilder;
use rustyray::ObjectRef;

#[rustyray::actor]
struct Keeper {
    kept: u64,
}

#[rustyray::actor]
impl Keeper {
    fn new() -> Self {
        Keeper { kept: 0 }
    }

    fn keep(&mut self, k: u64) -> u64 {
        self.kept += k;
        self.kept
    }
}

fn named(name: &'static str, after: Option<&ObjectRef<u64>>) -> ObjectRef<u64> {
    let mut task = TaskBuilder::new(name);
    let dep = after.map(|r| task.arg(r));
    task.spawn(move || Ok(dep.as_ref().map_or(Ok(0), |d| d.get())? + 1))
}

/// The one task of `function`, in its current state.
fn state_of(function: &str) -> TaskState {
    let found = state::tasks(&TaskFilter::default().function(function));
    assert_eq!(found.len(), 1, "{function}: {found:?}");
    found[0].state
}

#[test]
fn tasks_are_listed_in_every_state() {
    let rt = common::runtime(1);
    let _guard = rt.enter();
    // One CPU: the gated task holds it while it runs.
    let (blocker, release) = common::gated(7u64);
    while state::tasks(&TaskFilter::default().state(TaskState::Running)).is_empty() {
        std::thread::sleep(Duration::from_millis(1));
    }
    let queued = named("st_queued", None);
    let waiting = named("st_waiting", Some(&blocker));
    let cancelled = named("st_cancelled", Some(&blocker));
    assert!(rustyray::cancel(&cancelled));

    assert_eq!(state_of("gated"), TaskState::Running);
    assert_eq!(state_of("st_queued"), TaskState::Queued);
    assert_eq!(state_of("st_waiting"), TaskState::WaitingForDependencies);
    assert_eq!(state_of("st_cancelled"), TaskState::Cancelled);
    let pending = &state::tasks(&TaskFilter::default().function("st_queued"))[0];
    assert_eq!(pending.resources, Some((1.0, 0.0)));
    assert_eq!(pending.object, queued.id());

    release.send(()).unwrap();
    assert_eq!(rustyray::get(&waiting).unwrap(), 8);
    assert_eq!(rustyray::get(&queued).unwrap(), 1);
    let failure = common::fail("st failure");
    let mut downstream = TaskBuilder::new("st_downstream");
    let input = downstream.arg(&failure);
    let downstream = downstream.spawn(move || Ok(input.get()? + 1));
    assert!(rustyray::get(&downstream).is_err());
    assert_eq!(state_of("gated"), TaskState::Finished);
    assert_eq!(state_of("st_waiting"), TaskState::Finished);
    assert_eq!(state_of("fail"), TaskState::Failed);
    // A task whose argument failed is failed too, without ever running.
    assert_eq!(state_of("st_downstream"), TaskState::Failed);
    let skipped = &state::tasks(&TaskFilter::default().function("st_downstream"))[0];
    assert_eq!((skipped.started, skipped.duration), (None, None));
    let done = &state::tasks(&TaskFilter::default().function("st_waiting"))[0];
    assert!(
        done.started.is_some() && done.duration.is_some(),
        "{done:?}"
    );

    // Filters combine.
    let failed = state::tasks(&TaskFilter::default().state(TaskState::Failed));
    assert_eq!(failed.len(), 2, "{failed:?}");
    let none = state::tasks(
        &TaskFilter::default()
            .state(TaskState::Failed)
            .function("gated"),
    );
    assert!(none.is_empty(), "{none:?}");
}

#[test]
fn objects_actors_and_the_summary() {
    let rt = common::runtime(2);
    let _guard = rt.enter();
    let bytes = rustyray::put(vec![7u8; 4096]).unwrap();
    let lent = rustyray::get_arc(&bytes).unwrap();
    let object = state::objects()
        .into_iter()
        .find(|o| o.id == bytes.id())
        .expect("the put object is listed");
    assert_eq!(object.state, ObjectState::Ready);
    assert!(object.size.unwrap() >= 4096, "{object:?}");
    assert!(
        object.pinned,
        "a value lent out by get_arc is pinned: {object:?}"
    );
    assert_eq!(object.refs, 1);
    drop(lent);
    let again = bytes.clone();
    let object = state::objects()
        .into_iter()
        .find(|o| o.id == bytes.id())
        .unwrap();
    assert!(!object.pinned);
    drop(again);

    let keeper = Keeper::options().name("state-keeper").remote();
    assert_eq!(rustyray::get(&keeper.keep(3)).unwrap(), 3);
    let doomed = Keeper::remote();
    rustyray::kill(&doomed).unwrap();
    let actors = state::actors();
    let alive = actors.iter().find(|a| a.id == keeper.id()).expect("listed");
    assert_eq!(alive.state, ActorState::Alive);
    assert!(
        alive.class.contains("Keeper") && alive.class.contains("state-keeper"),
        "{alive:?}"
    );
    let dead = actors.iter().find(|a| a.id == doomed.id()).expect("listed");
    assert!(
        matches!(&dead.state, ActorState::Dead(why) if why.contains("killed")),
        "{dead:?}"
    );

    let summary = state::summary();
    assert_eq!(summary.actors, (1, 1));
    let keep = "Keeper `state-keeper`.keep";
    assert_eq!(summary.tasks[keep][&TaskState::Finished], 1, "{summary:?}");
    // The put object is the one ready object left (the call's result was dropped after `get`).
    assert_eq!(summary.objects["READY"].0, 1, "{summary:?}");
    assert!(summary.objects["READY"].1 >= 4096, "{summary:?}");
    let table = summary.to_string();
    assert!(
        table.contains(keep) && table.contains("FINISHED"),
        "{table}"
    );
    assert!(table.contains("ACTORS: 1 alive, 1 dead"), "{table}");
}
