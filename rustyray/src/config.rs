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

    /// The object store's memory budget in bytes. Default: a quarter of system memory.
    pub fn object_store_memory(mut self, bytes: u64) -> Self {
        self.object_store_memory = Some(bytes);
        self
    }

    /// Where objects over the memory budget are spilled. Default: a fresh folder under the
    /// system's temporary directory.
    pub fn spill_dir(mut self, path: impl Into<PathBuf>) -> Self {
        self.spill_dir = Some(path.into());
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
    }
}
