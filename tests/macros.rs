//! `#[remote]` and `#[actor]`: every rule of the generated API, each on its own runtime.
mod common;

use common::runtime;
use rustyray::registry::{self, Kind};
use rustyray::{ActorHandle, Error, ObjectRef};

#[rustyray::remote]
fn mul(a: i64, b: i64) -> i64 {
    a * b
}

#[rustyray::remote]
async fn slow_double(x: u64) -> u64 {
    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    x * 2
}

#[rustyray::remote(max_retries = 3)]
fn flaky(fail_times: u32, counter: String) -> u32 {
    let tries = TRIES.with_label(&counter);
    if tries <= fail_times {
        panic!("try {tries}");
    }
    tries
}

/// Per-test try counters for `flaky`.
struct Tries;
static TRIES: Tries = Tries;
static COUNTS: std::sync::Mutex<Vec<(String, u32)>> = std::sync::Mutex::new(Vec::new());
impl Tries {
    fn with_label(&self, label: &str) -> u32 {
        let mut counts = COUNTS.lock().unwrap();
        match counts.iter_mut().find(|(l, _)| l == label) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                counts.push((label.to_owned(), 1));
                1
            }
        }
    }
}

#[rustyray::remote]
fn parse_number(text: String) -> Result<i64, String> {
    text.trim()
        .parse()
        .map_err(|e| format!("`{text}` is not a number ({e})"))
}

#[rustyray::remote]
fn read_file(path: String) -> anyhow::Result<String> {
    use anyhow::Context;
    std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))
}

#[rustyray::remote]
fn io_failure() -> std::io::Result<u8> {
    Err(std::io::Error::other("disk on fire"))
}

#[rustyray::remote]
fn ref_identity(r: ObjectRef<i64>) -> ObjectRef<i64> {
    r
}

#[rustyray::remote]
fn read_through(r: ObjectRef<i64>) -> rustyray::Result<i64> {
    rustyray::get(&r)
}

#[rustyray::remote]
fn nothing() {}

#[rustyray::remote]
fn options(remote: i64) -> i64 {
    remote + 1 // parameters may share the generated items' names
}

mod left {
    #[rustyray::remote]
    pub fn which() -> String {
        "left".into()
    }
}

mod right {
    #[rustyray::remote]
    pub fn which() -> String {
        "right".into()
    }
}

#[test]
fn remote_functions_take_values_or_refs_and_stay_callable() {
    let rt = runtime(2);
    let _g = rt.enter();
    let a = mul::remote(6, 7);
    let b = mul::remote(&a, 2);
    let c = mul::remote(b.clone(), a);
    assert_eq!(rustyray::get(&c).unwrap(), 84 * 42);
    assert_eq!(mul(2, 3), 6);
    let doubled = slow_double::remote(84u64);
    assert_eq!(rustyray::get(&slow_double::remote(&doubled)).unwrap(), 336);
    rustyray::get(&nothing::remote()).unwrap();
    assert_eq!(rustyray::get(&options::remote(1)).unwrap(), 2);
}

#[test]
fn options_override_resources_and_name_per_call() {
    let rt = runtime(2);
    let _g = rt.enter();
    match rustyray::get(&mul::options().num_cpus(3.0).remote(1, 1)) {
        Err(Error::Infeasible {
            function, resource, ..
        }) => {
            assert_eq!((function.as_str(), resource.as_str()), ("mul", "CPU"));
        }
        other => panic!("{other:?}"),
    }
    let named = parse_number::options()
        .name("parse-row-7")
        .remote("x".to_string());
    match rustyray::get(&named) {
        Err(Error::TaskFailed { function, .. }) => assert_eq!(function, "parse-row-7"),
        other => panic!("{other:?}"),
    }
    let fine = mul::options()
        .num_cpus(0.5)
        .resource("none", 0.0)
        .remote(2, 2);
    assert_eq!(rustyray::get(&fine).unwrap(), 4);
}

#[test]
fn attribute_arguments_set_defaults_that_options_can_override() {
    let rt = runtime(2);
    let _g = rt.enter();
    // max_retries = 3 by default: two panics, then success on the third try.
    assert_eq!(
        rustyray::get(&flaky::remote(2, "defaults".to_string())).unwrap(),
        3
    );
    // Overridden to no retries: the first panic fails the task.
    let once = flaky::options()
        .max_retries(0)
        .remote(5, "override".to_string());
    match rustyray::get(&once) {
        Err(Error::TaskFailed { message, .. }) => assert!(
            message.starts_with("panicked at tests/macros.rs:") && message.ends_with(": try 1"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn result_returning_functions_give_the_ok_type_and_fail_on_err() {
    let rt = runtime(2);
    let _g = rt.enter();
    let ok: ObjectRef<i64> = parse_number::remote(" 12 ".to_string());
    assert_eq!(rustyray::get(&ok).unwrap(), 12);
    match rustyray::get(&parse_number::remote("twelve".to_string())) {
        Err(Error::TaskFailed {
            function, message, ..
        }) => {
            assert_eq!(function, "parse_number");
            assert!(message.starts_with("`twelve` is not a number"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    match rustyray::get(&read_file::remote("/nonexistent/rustyray".to_string())) {
        Err(Error::TaskFailed {
            message, causes, ..
        }) => {
            assert_eq!(message, "reading /nonexistent/rustyray");
            assert_eq!(causes.len(), 1, "anyhow's chain is kept: {causes:?}");
        }
        other => panic!("{other:?}"),
    }
    match rustyray::get(&io_failure::remote()) {
        Err(Error::TaskFailed { message, .. }) => assert_eq!(message, "disk on fire"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_parameter_declared_as_a_ref_receives_the_ref_unresolved() {
    let rt = runtime(2);
    let _g = rt.enter();
    let inner = mul::remote(3, 3);
    let passed_through: ObjectRef<ObjectRef<i64>> = ref_identity::remote(inner.clone());
    assert_eq!(
        rustyray::get(&passed_through).unwrap(),
        inner,
        "the same ref, not its value"
    );
    assert_eq!(rustyray::get(&read_through::remote(inner)).unwrap(), 9);
}

#[test]
fn functions_of_the_same_name_in_different_modules_have_distinct_ids() {
    let rt = runtime(1);
    let _g = rt.enter();
    assert_eq!(rustyray::get(&left::which::remote()).unwrap(), "left");
    assert_eq!(rustyray::get(&right::which::remote()).unwrap(), "right");
    let left_id = concat!(module_path!(), "::left::which");
    let right_id = concat!(module_path!(), "::right::which");
    assert_eq!(registry::find(left_id).unwrap().kind(), Kind::Function);
    assert_eq!(registry::find(right_id).unwrap().kind(), Kind::Function);
    let mut ids: Vec<&str> = registry::entries().map(|r| r.id()).collect();
    let total = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), total, "every id is unique");
}

#[tokio::test]
async fn a_function_runs_by_id_from_encoded_arguments() {
    let id = concat!(module_path!(), "::mul");
    let args = postcard::to_stdvec(&(6i64, 7i64)).unwrap();
    let out = registry::invoke(id, args).await.unwrap();
    assert_eq!(postcard::from_bytes::<i64>(&out).unwrap(), 42);

    let id = concat!(module_path!(), "::parse_number");
    let args = postcard::to_stdvec(&("x".to_string(),)).unwrap();
    assert!(matches!(
        registry::invoke(id, args).await,
        Err(Error::TaskFailed { .. })
    ));
    let bad_args = postcard::to_stdvec(&()).unwrap();
    assert!(matches!(
        registry::invoke(id, bad_args).await,
        Err(Error::Serialization(_))
    ));
    assert!(matches!(
        registry::invoke("nowhere::nothing", vec![]).await,
        Err(Error::NotFound { .. })
    ));
}

// ---- actors ------------------------------------------------------------------------------------

mod bank {
    /// An actor in another module: its methods are callable from anywhere, no trait imported.
    #[rustyray::actor]
    pub struct Account {
        balance: i64,
        history: Vec<i64>,
    }

    #[rustyray::actor]
    impl Account {
        pub fn open(initial: i64) -> Result<Self, String> {
            if initial < 0 {
                return Err(format!("cannot open with {initial}"));
            }
            Ok(Account {
                balance: initial,
                history: vec![initial],
            })
        }

        pub fn deposit(&mut self, amount: i64) -> i64 {
            self.balance += amount;
            self.history.push(amount);
            self.balance
        }

        pub fn withdraw(&mut self, amount: i64) -> anyhow::Result<i64> {
            anyhow::ensure!(
                amount <= self.balance,
                "insufficient funds: {} < {amount}",
                self.balance
            );
            self.balance -= amount;
            Ok(self.balance)
        }

        pub async fn history(&self) -> Vec<i64> {
            self.history.clone()
        }

        pub fn corrupt(&mut self) -> i64 {
            panic!("ledger corrupted")
        }

        #[rustyray(skip)]
        pub fn audit(&self, note: &str) -> String {
            format!("{note}: {}", self.balance)
        }
    }
}

#[test]
fn actor_methods_are_called_on_the_handle_with_values_or_refs() {
    let rt = runtime(2);
    let _g = rt.enter();
    let account: ActorHandle<bank::Account> = bank::Account::remote(100);
    let first = account.deposit(50);
    let second = account.deposit(&first); // 150 + 150
    let amount = mul::remote(10, 10);
    let third = account.withdraw(amount);
    assert_eq!(rustyray::get(&third).unwrap(), 200);
    assert_eq!(rustyray::get(&second).unwrap(), 300);
    assert_eq!(
        rustyray::get(&account.history()).unwrap(),
        vec![100, 50, 150]
    );
    match rustyray::get(&account.withdraw(1_000)) {
        Err(Error::TaskFailed {
            function, message, ..
        }) => {
            assert_eq!(function, "Account::withdraw");
            assert_eq!(message, "insufficient funds: 200 < 1000");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        rustyray::get(&account.deposit(1)).unwrap(),
        201,
        "an Err leaves the actor alive"
    );
}

#[test]
fn a_failing_constructor_result_kills_the_actor() {
    let rt = runtime(1);
    let _g = rt.enter();
    let account = bank::Account::remote(-5);
    match rustyray::get(&account.deposit(1)) {
        Err(Error::ActorDied { reason, .. }) => {
            assert!(reason.contains("cannot open with -5"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn named_actors_are_found_by_name_and_names_are_unique() {
    let rt = runtime(2);
    let _g = rt.enter();
    let account = bank::Account::options().name("savings").remote(10);
    account.deposit(5);
    let found: ActorHandle<bank::Account> = rustyray::get_actor("savings").unwrap();
    assert_eq!(found, account);
    assert_eq!(rustyray::get(&found.deposit(1)).unwrap(), 16);
    assert!(matches!(
        rustyray::get_actor::<bank::Account>("checking"),
        Err(Error::NotFound { .. })
    ));
    let duplicate = bank::Account::options().name("savings").remote(0);
    match rustyray::get(&duplicate.deposit(1)) {
        Err(Error::ActorDied { reason, .. }) => {
            assert!(reason.contains("already exists"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn max_restarts_rebuilds_a_panicked_actor_from_its_constructor_arguments() {
    let rt = runtime(2);
    let _g = rt.enter();
    let start = mul::remote(5, 1);
    let account = bank::Account::options().max_restarts(1).remote(&start);
    assert_eq!(rustyray::get(&account.deposit(10)).unwrap(), 15);
    assert!(matches!(
        rustyray::get(&account.corrupt()),
        Err(Error::TaskFailed { .. })
    ));
    // Rebuilt from `open(5)`: the deposit of 10 is gone.
    assert_eq!(rustyray::get(&account.deposit(1)).unwrap(), 6);
    assert!(matches!(
        rustyray::get(&account.corrupt()),
        Err(Error::TaskFailed { .. })
    ));
    match rustyray::get(&account.deposit(1)) {
        Err(Error::ActorDied { reason, .. }) => {
            assert!(reason.contains("ledger corrupted"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[rustyray::actor]
struct Pipeline {
    stages: Vec<String>,
}

#[rustyray::actor]
impl Pipeline {
    async fn new(first: String) -> Self {
        tokio::task::yield_now().await;
        Pipeline {
            stages: vec![first],
        }
    }

    /// Hands work to an actor passed in as an argument and to a task, awaiting both.
    async fn add_stage(
        &mut self,
        name: String,
        ledger: ActorHandle<bank::Account>,
    ) -> anyhow::Result<usize> {
        let balance = ledger.deposit(1).await?;
        let doubled = slow_double::remote(balance as u64).await?;
        self.stages.push(format!("{name}:{doubled}"));
        Ok(self.stages.len())
    }

    fn stages(&self) -> Vec<String> {
        self.stages.clone()
    }
}

#[test]
fn async_actors_await_tasks_and_other_actors_passed_as_arguments() {
    let rt = runtime(2);
    let _g = rt.enter();
    let ledger = bank::Account::remote(0);
    let pipeline = Pipeline::remote("source".to_string());
    let lens: Vec<_> = (0..3)
        .map(|i| pipeline.add_stage(format!("s{i}"), ledger.clone()))
        .collect();
    assert_eq!(rustyray::get_all(&lens).unwrap(), vec![2, 3, 4]);
    assert_eq!(
        rustyray::get(&pipeline.stages()).unwrap(),
        vec!["source", "s0:2", "s1:4", "s2:6"]
    );
    // The skipped method is an ordinary method of the struct, not of the handle.
    let local = bank::Account::open(3).unwrap();
    assert_eq!(local.audit("local"), "local: 3");
}

// ---- concurrency -------------------------------------------------------------------------------

#[rustyray::actor]
struct Rendezvous {
    barrier: tokio::sync::Barrier,
    log: std::sync::Mutex<Vec<String>>,
}

#[rustyray::actor(concurrent)]
impl Rendezvous {
    fn new(parties: usize) -> Self {
        Rendezvous {
            barrier: tokio::sync::Barrier::new(parties),
            log: Default::default(),
        }
    }

    /// Returns only once `parties` calls wait at the barrier together.
    async fn meet(&self, who: u32) -> u32 {
        self.log.lock().unwrap().push(format!("start {who}"));
        self.barrier.wait().await;
        self.log.lock().unwrap().push(format!("end {who}"));
        who
    }

    fn log(&mut self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

#[test]
fn concurrent_actors_interleave_shared_async_calls_up_to_max_concurrency() {
    let rt = runtime(2);
    let _g = rt.enter();
    // Four calls can only finish if all four are inside `meet` at once.
    let actor = Rendezvous::options().max_concurrency(4).remote(4);
    let met: Vec<_> = (0..4).map(|i| actor.meet(i)).collect();
    let log = actor.log(); // `&mut self`: waits until the interleaved calls are done
    let got: Vec<u32> = met
        .iter()
        .map(|r| rustyray::get_timeout(r, common::DEADLOCK_GUARD).unwrap())
        .collect();
    assert_eq!(got, vec![0, 1, 2, 3]);
    let log = rustyray::get(&log).unwrap();
    assert_eq!(
        log.len(),
        8,
        "the exclusive call saw every shared call finish: {log:?}"
    );
    assert!(
        log[..4].iter().all(|l| l.starts_with("start")),
        "all four started before any ended: {log:?}"
    );
}

static COUNTED_RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[rustyray::actor]
struct Fragile;

#[rustyray::actor(concurrent)]
impl Fragile {
    fn new() -> Self {
        Fragile
    }

    async fn count(&self) -> usize {
        COUNTED_RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1
    }

    async fn boom(&self) -> u8 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        panic!("boom")
    }
}

#[test]
fn a_crash_retries_only_the_concurrent_calls_it_interrupted() {
    let rt = runtime(2);
    let _g = rt.enter();
    // Two restarts: one for the crash, one for the retried call's crash.
    let actor = Fragile::options()
        .max_concurrency(2)
        .max_restarts(2)
        .max_task_retries(1)
        .remote();
    let counted = actor.count();
    let boom = actor.boom();
    assert_eq!(rustyray::get(&counted).unwrap(), 1);
    assert!(rustyray::get(&boom).is_err(), "it panics on its retry too");
    // The call that had finished before the crash is not run again by the restart.
    assert_eq!(rustyray::get(&actor.count()).unwrap(), 2);
}

#[test]
fn with_max_concurrency_1_calls_run_one_at_a_time_in_order() {
    let rt = runtime(2);
    let _g = rt.enter();
    // An async actor's default is 1000 calls at once (tests/actor_semantics.rs).
    let actor = Rendezvous::options().max_concurrency(1).remote(1);
    let met: Vec<_> = (0..3).map(|i| actor.meet(i)).collect();
    assert_eq!(rustyray::get_all(&met).unwrap(), vec![0, 1, 2]);
    let log = rustyray::get(&actor.log()).unwrap();
    assert_eq!(
        log,
        vec!["start 0", "end 0", "start 1", "end 1", "start 2", "end 2"]
    );
}

#[test]
fn max_concurrency_needs_the_concurrent_attribute_and_a_positive_value() {
    let rt = runtime(1);
    let _g = rt.enter();
    let account = bank::Account::options().max_concurrency(8).remote(1);
    match rustyray::get(&account.deposit(1)) {
        Err(Error::ActorDied { reason, .. }) => {
            assert!(
                reason.contains("#[rustyray::actor(concurrent)]"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
    let zero = Rendezvous::options().max_concurrency(0).remote(1);
    assert!(matches!(
        rustyray::get(&zero.meet(1)),
        Err(Error::ActorDied { .. })
    ));
}

#[tokio::test]
async fn actors_are_built_and_called_by_id_from_encoded_arguments() {
    let base = concat!(module_path!(), "::bank::Account");
    let open = format!("{base}::open");
    let deposit = format!("{base}::deposit");
    let history = format!("{base}::history");
    assert_eq!(
        registry::find(&open).unwrap().kind(),
        Kind::ActorConstructor
    );
    assert_eq!(registry::find(&deposit).unwrap().kind(), Kind::ActorMethod);

    let mut account = registry::construct(&open, postcard::to_stdvec(&(10i64,)).unwrap())
        .await
        .unwrap();
    let out = registry::call_method(
        &deposit,
        &mut *account,
        postcard::to_stdvec(&(5i64,)).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(postcard::from_bytes::<i64>(&out).unwrap(), 15);
    let out = registry::call_method(&history, &mut *account, postcard::to_stdvec(&()).unwrap())
        .await
        .unwrap();
    assert_eq!(postcard::from_bytes::<Vec<i64>>(&out).unwrap(), vec![10, 5]);

    // A failing constructor, a method on the wrong actor type, a function id used as a method.
    let refused = registry::construct(&open, postcard::to_stdvec(&(-1i64,)).unwrap()).await;
    assert!(matches!(refused, Err(Error::TaskFailed { .. })));
    let mut other = registry::construct(
        concat!(module_path!(), "::Pipeline::new"),
        postcard::to_stdvec(&("x".to_string(),)).unwrap(),
    )
    .await
    .unwrap();
    let wrong = registry::call_method(
        &deposit,
        &mut *other,
        postcard::to_stdvec(&(1i64,)).unwrap(),
    )
    .await;
    assert!(matches!(wrong, Err(Error::TypeMismatch { .. })));
    let not_a_method =
        registry::call_method(concat!(module_path!(), "::mul"), &mut *account, vec![]).await;
    assert!(matches!(not_a_method, Err(Error::NotFound { .. })));
}
