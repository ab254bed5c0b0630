//! Runtime configuration.

use std::path::PathBuf;

use crate::error::{Error, Result};

pub(crate) mod env;
#[cfg(feature = "ray")]
pub(crate) use env::cluster_address_in_env;

/// The largest amount of a custom resource: amounts are counted in thousandths in an `i64`,
/// and a task may name a resource several times, so this leaves room for sums.
pub(crate) const MAX_RESOURCE: f64 = 1e12;

/// How a runtime is sized: its CPUs, GPUs and custom resources, and its object store.
///
/// Built with chained setters; every field has a default that fits the machine.
///
/// ```
/// use rustyray::Config;
///
/// let config = Config::default()
///     .num_cpus(4)
///     .num_gpus(0)
///     .resource("disk", 2.0)
///     .object_store_memory(1 << 30);
/// assert_eq!(config.get_num_cpus(), 4);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    num_cpus: usize,
    num_gpus: usize,
    resources: Vec<(String, f64)>,
    object_store_memory: Option<u64>,
    spill_dir: Option<PathBuf>,
    spill_limit: Option<u64>,
    max_threads: usize,
    print_task_panics: bool,
    release_memory_when_idle: bool,
    dashboard: Option<std::net::SocketAddr>,
    dashboard_interval: std::time::Duration,
    ray: Option<RayTarget>,
}

/// Where a Ray-backed runtime sends its work.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum RayTarget {
    /// A cluster this process connects to as a driver.
    Cluster(Cluster),
    /// The cluster of the Ray worker this process is (already connected by Ray itself).
    #[cfg_attr(not(feature = "ray"), allow(dead_code))]
    Worker,
}

/// A Ray cluster to connect to as a driver.
#[derive(Clone, Debug, PartialEq, Default)]
pub(crate) struct Cluster {
    pub(crate) address: String,
    pub(crate) code_search_path: Vec<PathBuf>,
    pub(crate) namespace: Option<String>,
    pub(crate) auth_token: Option<Secret>,
}

/// A secret (a Ray authentication token): never printed, in `Debug` output either.
#[derive(Clone, PartialEq)]
pub(crate) struct Secret(pub(crate) String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

impl Default for Config {
    /// As many CPUs as the machine has, the GPUs it shows (those `CUDA_VISIBLE_DEVICES` lists,
    /// else those the NVIDIA driver reports), no custom resources.
    fn default() -> Self {
        Config {
            num_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            num_gpus: detected_gpus(),
            resources: Vec::new(),
            object_store_memory: None,
            spill_dir: None,
            spill_limit: None,
            max_threads: crate::cpu_pool::DEFAULT_MAX_THREADS,
            print_task_panics: false,
            release_memory_when_idle: true,
            dashboard: None,
            dashboard_interval: std::time::Duration::from_millis(250),
            ray: None,
        }
    }
}

/// The GPUs this process may use: the devices `CUDA_VISIBLE_DEVICES` lists when it is set
/// (empty, or `-1`, means none), else the GPUs the NVIDIA driver reports in
/// `/proc/driver/nvidia/gpus`, else 0.
fn detected_gpus() -> usize {
    gpus_from(
        std::env::var("CUDA_VISIBLE_DEVICES").ok().as_deref(),
        std::fs::read_dir("/proc/driver/nvidia/gpus")
            .map(|dir| dir.count())
            .ok(),
    )
}

fn gpus_from(visible: Option<&str>, driver: Option<usize>) -> usize {
    match visible {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .take_while(|d| !d.is_empty() && !d.starts_with('-'))
            .count(),
        None => driver.unwrap_or(0),
    }
}

impl Config {
    /// The number of CPU slots: how many tasks needing one CPU run at once. Default: the
    /// machine's available parallelism.
    pub fn num_cpus(mut self, n: usize) -> Self {
        self.num_cpus = n;
        self
    }

    /// The number of GPUs tasks may reserve. Default: those `CUDA_VISIBLE_DEVICES` lists, else
    /// those the NVIDIA driver reports, else 0.
    pub fn num_gpus(mut self, n: usize) -> Self {
        self.num_gpus = n;
        self
    }

    /// Declares `amount` of a custom resource named `name`, which tasks can reserve. Setting the
    /// same name again replaces the amount.
    pub fn resource(mut self, name: impl Into<String>, amount: f64) -> Self {
        let name = name.into();
        match self.resources.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = amount,
            None => self.resources.push((name, amount)),
        }
        self
    }

    /// The object store's memory budget in bytes: ready objects beyond it are spilled to
    /// disk. Objects under 1 KiB are not counted and never spilled (Ray too keeps small
    /// objects outside its object store). Default: 30% of system memory (as Ray's), or 2 GiB
    /// where that cannot be read.
    pub fn object_store_memory(mut self, bytes: u64) -> Self {
        self.object_store_memory = Some(bytes);
        self
    }

    /// Where objects over the memory budget are spilled: the runtime makes a folder of its
    /// own inside it on first use and removes it at shutdown. Default: the system's temporary
    /// directory.
    pub fn spill_dir(mut self, path: impl Into<PathBuf>) -> Self {
        self.spill_dir = Some(path.into());
        self
    }

    /// The most bytes spilled objects may take on disk. Default: no limit but the disk's.
    pub fn spill_limit(mut self, bytes: u64) -> Self {
        self.spill_limit = Some(bytes);
        self
    }

    /// The most threads the runtime runs sync bodies on. A sync task blocked in `get` keeps
    /// its thread while it lends its CPU to other tasks, so deep nesting needs more threads
    /// than CPUs; past this limit, new work waits for a thread to finish its task (and a
    /// warning is logged once through `tracing`). At least `num_cpus`. Default: 1024.
    pub fn max_threads(mut self, n: usize) -> Self {
        self.max_threads = n;
        self
    }

    /// Whether a panic caught in a task body or an actor method is also printed by the panic
    /// hook (Rust's default prints it with its backtrace). Default: `false`: the panic is
    /// reported once, as the task's [`Error::TaskPanicked`](crate::Error) and a `tracing`
    /// event, and panics anywhere else (your own threads, RustyRay itself) print as usual.
    pub fn print_task_panics(mut self, print: bool) -> Self {
        self.print_task_panics = print;
        self
    }

    /// Whether the runtime gives freed heap memory back to the operating system when it becomes
    /// idle after a burst of at least 65536 tasks. Default: `true`. It matters with glibc's
    /// allocator (Linux), which otherwise keeps the resident size of the highest burst; it
    /// costs about 2 ms per idle moment after 500k tasks, and nothing while tasks run. Elsewhere
    /// it does nothing. See `docs/performance.md` ("Running for weeks").
    pub fn release_memory_when_idle(mut self, release: bool) -> Self {
        self.release_memory_when_idle = release;
        self
    }

    /// Serves the live dashboard and Prometheus metrics at `addr` (for example
    /// `127.0.0.1:8265`, Ray's port) while the runtime runs: a page at `/`, JSON at `/api/..`
    /// and `/metrics` (see docs/observability.md). Port 0 picks a free port. Nothing listens
    /// unless this (or `RUSTYRAY_DASHBOARD`) is set, and only on the address given: use a
    /// loopback address unless others should see it. Needs the `dashboard` feature; without
    /// it, the runtime fails to start, saying so.
    pub fn dashboard(mut self, addr: std::net::SocketAddr) -> Self {
        self.dashboard = Some(addr);
        self
    }

    /// How old the dashboard's data may be: every request is answered from one shared
    /// snapshot, built off the runtime's workers at most once per interval, so polling the
    /// dashboard hard costs the runtime little. Default: 250 ms. `Duration::ZERO` builds one
    /// for every request that finds none newer than itself (for tests that read what they
    /// just did).
    pub fn dashboard_interval(mut self, interval: std::time::Duration) -> Self {
        self.dashboard_interval = interval;
        self
    }

    /// How old the dashboard's data may be.
    pub fn get_dashboard_interval(&self) -> std::time::Duration {
        self.dashboard_interval
    }

    /// Where the dashboard is served, if it is.
    pub fn get_dashboard(&self) -> Option<std::net::SocketAddr> {
        self.dashboard
    }

    /// Runs on the Ray cluster at `address` (for example `127.0.0.1:6379`, or `auto`) instead
    /// of embedded. Needs the `ray` feature; see docs/ray.md. The global runtime also takes
    /// the address from the `RUSTYRAY_ADDRESS` environment variable.
    ///
    /// Ray's workers load the remote functions and actors from the `cdylib` built from your
    /// crate: give its folder with [`Config::code_search_path`].
    pub fn ray(mut self, address: impl Into<String>) -> Self {
        self.cluster().address = address.into();
        self
    }

    /// Adds a folder (or `.so` file) where Ray's workers look for the `cdylib` holding your
    /// remote functions and actors. Only used with [`Config::ray`].
    pub fn code_search_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.cluster().code_search_path.push(path.into());
        self
    }

    /// The token of a Ray cluster with token authentication on (its head started with
    /// `RAY_AUTH_MODE=token`; `ray get-auth-token` prints it). Only used with [`Config::ray`].
    ///
    /// A driver of such a cluster runs with `RAY_AUTH_MODE=token` in its environment: Ray reads
    /// that once, when its library loads (connecting fails with an error saying so when a
    /// token is given without it). The token itself is read where Ray's own processes read it
    /// (`RAY_AUTH_TOKEN`, the file at `RAY_AUTH_TOKEN_PATH`, `~/.ray/auth_token`), unless it
    /// is given here. It never appears in `Debug` output or in errors.
    ///
    /// ```
    /// let config = rustyray::Config::default()
    ///     .ray("10.0.0.1:6379")
    ///     .ray_auth_token("6f1c0a93e2b54d7e8a41c3f0b9d2e7a5");
    /// assert!(!format!("{config:?}").contains("6f1c0a93"));
    /// ```
    pub fn ray_auth_token(mut self, token: impl Into<String>) -> Self {
        self.cluster().auth_token = Some(Secret(token.into()));
        self
    }

    /// The cluster being described, made if none was yet.
    fn cluster(&mut self) -> &mut Cluster {
        if !matches!(self.ray, Some(RayTarget::Cluster(_))) {
            self.ray = Some(RayTarget::Cluster(Cluster::default()));
        }
        match &mut self.ray {
            Some(RayTarget::Cluster(cluster)) => cluster,
            _ => unreachable!("a cluster was just set"),
        }
    }

    /// The Ray cluster address given with [`Config::ray`], if any.
    pub fn get_ray_address(&self) -> Option<&str> {
        match &self.ray {
            Some(RayTarget::Cluster(cluster)) => Some(&cluster.address),
            _ => None,
        }
    }

    pub(crate) fn ray_target(&self) -> Option<&RayTarget> {
        self.ray.as_ref()
    }

    /// The configuration of a Ray worker process's runtime.
    #[cfg(feature = "ray")]
    pub(crate) fn ray_worker() -> Config {
        Config {
            ray: Some(RayTarget::Worker),
            ..Config::default()
        }
    }

    /// The defaults, overridden by the `RUSTYRAY_*` environment variables that are set:
    ///
    /// | variable | field | accepted |
    /// |---|---|---|
    /// | `RUSTYRAY_NUM_CPUS` | [`num_cpus`](Config::num_cpus) | an integer from 1 to 4096 |
    /// | `RUSTYRAY_NUM_GPUS` | [`num_gpus`](Config::num_gpus) | an integer from 0 to 4096 |
    /// | `RUSTYRAY_RESOURCES` | [`resource`](Config::resource) | `name=amount` pairs separated by commas, amounts finite, from 0 to 1e12 |
    /// | `RUSTYRAY_OBJECT_STORE_MEMORY` | [`object_store_memory`](Config::object_store_memory) | a size in bytes, at least 1, with an optional `K`, `M`, `G` or `T` suffix (powers of 1024) |
    /// | `RUSTYRAY_SPILL_DIR` | [`spill_dir`](Config::spill_dir) | a non-empty path |
    /// | `RUSTYRAY_SPILL_LIMIT` | [`spill_limit`](Config::spill_limit) | a size, as for the memory |
    /// | `RUSTYRAY_MAX_THREADS` | [`max_threads`](Config::max_threads) | an integer from 1 to 65536 |
    /// | `RUSTYRAY_PRINT_TASK_PANICS` | [`print_task_panics`](Config::print_task_panics) | `1`, `true`, `0` or `false` |
    /// | `RUSTYRAY_RELEASE_MEMORY_WHEN_IDLE` | [`release_memory_when_idle`](Config::release_memory_when_idle) | `1`, `true`, `0` or `false` |
    /// | `RUSTYRAY_DASHBOARD` | [`dashboard`](Config::dashboard) | an address and port, such as `127.0.0.1:8265` (needs the `dashboard` feature) |
    /// | `RUSTYRAY_ADDRESS` | [`ray`](Config::ray) | a Ray cluster address (needs the `ray` feature) |
    /// | `RUSTYRAY_CODE_SEARCH_PATH` | [`code_search_path`](Config::code_search_path) | folders separated by `:` |
    ///
    /// The global runtime, when started by a first call or by `#[rustyray::main]` without
    /// arguments, uses this configuration. A value that cannot be read is an
    /// [`Error::InvalidArgument`] naming the variable, the value and what it accepts.
    ///
    /// ```
    /// // With none of the variables set, this is `Config::default()`.
    /// let config = rustyray::Config::from_env()?;
    /// assert!(config.get_num_cpus() >= 1);
    /// # Ok::<(), rustyray::Error>(())
    /// ```
    pub fn from_env() -> Result<Config> {
        env::apply(Config::default(), |name| std::env::var_os(name))
    }

    /// The configured number of CPU slots.
    pub fn get_num_cpus(&self) -> usize {
        self.num_cpus
    }

    /// The configured number of GPUs.
    pub fn get_num_gpus(&self) -> usize {
        self.num_gpus
    }

    /// The configured custom resources.
    pub fn get_resources(&self) -> &[(String, f64)] {
        &self.resources
    }

    /// The configured object store budget, if one was set.
    pub fn get_object_store_memory(&self) -> Option<u64> {
        self.object_store_memory
    }

    /// The configured spill folder, if one was set.
    pub fn get_spill_dir(&self) -> Option<&PathBuf> {
        self.spill_dir.as_ref()
    }

    /// The configured spill limit, if one was set.
    pub fn get_spill_limit(&self) -> Option<u64> {
        self.spill_limit
    }

    /// The most threads sync bodies run on.
    pub fn get_max_threads(&self) -> usize {
        self.max_threads
    }

    /// Whether panics caught in task bodies and actor methods are printed too.
    pub fn get_print_task_panics(&self) -> bool {
        self.print_task_panics
    }

    /// Whether freed heap memory is given back to the system when the runtime becomes idle.
    pub fn get_release_memory_when_idle(&self) -> bool {
        self.release_memory_when_idle
    }

    /// The memory budget in force: the configured one, or the default.
    pub(crate) fn memory_budget(&self) -> u64 {
        self.object_store_memory
            .unwrap_or_else(|| system_memory().map_or(2 << 30, |total| total / 10 * 3))
    }

    /// Checks the values, naming the first bad one.
    pub(crate) fn validate(&self) -> Result<()> {
        let bounded = |what: &str, n: usize, min: usize, max: usize| {
            if (min..=max).contains(&n) {
                return Ok(());
            }
            Err(Error::InvalidArgument(format!(
                "{what} is {n}; it must be from {min} to {max}"
            )))
        };
        bounded("num_cpus", self.num_cpus, 1, env::MAX_COUNT)?;
        bounded("num_gpus", self.num_gpus, 0, env::MAX_COUNT)?;
        bounded("max_threads", self.max_threads, 1, env::MAX_THREADS)?;
        for (name, amount) in &self.resources {
            if name.is_empty() || name == "CPU" || name == "GPU" {
                return Err(Error::InvalidArgument(format!(
                    "custom resource name `{name}` is reserved or empty; use num_cpus/num_gpus \
                     for CPU and GPU and a non-empty name otherwise"
                )));
            }
            if !amount.is_finite() || *amount < 0.0 || *amount > MAX_RESOURCE {
                return Err(Error::InvalidArgument(format!(
                    "custom resource `{name}` has amount {amount}; it must be a finite number \
                     from 0 to {MAX_RESOURCE:e}"
                )));
            }
        }
        if self
            .spill_dir
            .as_ref()
            .is_some_and(|dir| dir.as_os_str().is_empty())
        {
            return Err(Error::InvalidArgument(
                "spill_dir is an empty path; give a folder (the runtime makes a private folder \
                 inside it), or leave it unset for the system's temporary directory"
                    .to_owned(),
            ));
        }
        if let Some(RayTarget::Cluster(Cluster { address, .. })) = &self.ray {
            if cfg!(not(feature = "ray")) {
                return Err(Error::InvalidArgument(format!(
                    "a Ray cluster (`{address}`) was configured, but rustyray was built without \
                     its `ray` feature; enable it (`rustyray = {{ version = \"..\", features = \
                     [\"ray\"] }}`) or remove `Config::ray` / RUSTYRAY_ADDRESS to run embedded"
                )));
            }
            if address.is_empty() {
                return Err(Error::InvalidArgument(
                    "code_search_path was set without a Ray address; call `Config::ray(address)` \
                     too (or set RUSTYRAY_ADDRESS)"
                        .to_owned(),
                ));
            }
        }
        if self.object_store_memory == Some(0) {
            return Err(Error::InvalidArgument(
                "object_store_memory is 0; give the object store at least some bytes".to_owned(),
            ));
        }
        Ok(())
    }
}

/// Total system memory in bytes, from `/proc/meminfo` (Linux).
fn system_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpus_come_from_cuda_visible_devices_then_the_driver() {
        assert_eq!(gpus_from(Some("0,1"), Some(8)), 2, "the variable wins");
        assert_eq!(gpus_from(Some("3"), None), 1);
        assert_eq!(gpus_from(Some(""), Some(8)), 0, "empty: none");
        assert_eq!(gpus_from(Some("-1"), Some(8)), 0, "-1: none");
        assert_eq!(
            gpus_from(Some("0,-1,2"), None),
            1,
            "CUDA stops at the first invalid id"
        );
        assert_eq!(gpus_from(None, Some(4)), 4);
        assert_eq!(gpus_from(None, None), 0);
    }

    #[test]
    fn bad_values_are_named() {
        let err = Config::default()
            .resource("CPU", 1.0)
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("`CPU`"), "{err}");
        let err = Config::default()
            .resource("disk", f64::NAN)
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("`disk`"), "{err}");
        assert!(Config::default().resource("disk", 1.0).validate().is_ok());
        let replaced = Config::default().resource("d", 1.0).resource("d", 3.0);
        assert_eq!(replaced.get_resources(), &[("d".to_owned(), 3.0)]);
        let budget = Config::default().memory_budget();
        assert!(budget > 0 && budget < system_memory().unwrap_or(u64::MAX));
        assert_eq!(Config::default().object_store_memory(5).memory_budget(), 5);
    }

    #[test]
    fn ray_settings_are_checked() {
        let ray = Config::default()
            .code_search_path("/a")
            .ray("127.0.0.1:6379")
            .code_search_path("/b");
        assert_eq!(ray.get_ray_address(), Some("127.0.0.1:6379"));
        match ray.ray_target() {
            Some(RayTarget::Cluster(cluster)) => assert_eq!(
                cluster.code_search_path,
                [PathBuf::from("/a"), PathBuf::from("/b")]
            ),
            other => panic!("{other:?}"),
        }
        let with_token = Config::default()
            .ray_auth_token("sekrit-token")
            .ray("127.0.0.1:6379");
        assert_eq!(with_token.get_ray_address(), Some("127.0.0.1:6379"));
        assert!(!format!("{with_token:?}").contains("sekrit"));
        let err = Config::default()
            .code_search_path("/a")
            .validate()
            .unwrap_err();
        assert!(err.to_string().contains("Config::ray"), "{err}");
        if cfg!(not(feature = "ray")) {
            let err = ray.validate().unwrap_err();
            assert!(err.to_string().contains("`ray` feature"), "{err}");
            let err = crate::Runtime::new(ray).unwrap_err();
            assert!(err.to_string().contains("`ray` feature"), "{err}");
        }
    }
}
