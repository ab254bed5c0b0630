//! Runtime configuration.

use std::path::PathBuf;

use crate::error::{Error, Result};

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
}

impl Default for Config {
    /// As many CPUs as the machine has, no GPUs, no custom resources.
    fn default() -> Self {
        Config {
            num_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            num_gpus: 0,
            resources: Vec::new(),
            object_store_memory: None,
            spill_dir: None,
            spill_limit: None,
        }
    }
}

impl Config {
    /// The number of CPU slots: how many tasks needing one CPU run at once. Default: the
    /// machine's available parallelism.
    pub fn num_cpus(mut self, n: usize) -> Self {
        self.num_cpus = n;
        self
    }

    /// The number of GPUs tasks may reserve. Default: 0.
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
    /// disk. Default: 30% of system memory (as Ray's), or 2 GiB where that cannot be read.
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

    /// The memory budget in force: the configured one, or the default.
    pub(crate) fn memory_budget(&self) -> u64 {
        self.object_store_memory
            .unwrap_or_else(|| system_memory().map_or(2 << 30, |total| total / 10 * 3))
    }

    /// Checks the values, naming the first bad one.
    pub(crate) fn validate(&self) -> Result<()> {
        for (name, amount) in &self.resources {
            if name.is_empty() || name == "CPU" || name == "GPU" {
                return Err(Error::InvalidArgument(format!(
                    "custom resource name `{name}` is reserved or empty; use num_cpus/num_gpus \
                     for CPU and GPU and a non-empty name otherwise"
                )));
            }
            if !amount.is_finite() || *amount < 0.0 {
                return Err(Error::InvalidArgument(format!(
                    "custom resource `{name}` has amount {amount}; it must be a finite number >= 0"
                )));
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
}
