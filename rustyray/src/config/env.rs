//! The configuration read from `RUSTYRAY_*` environment variables (see `Config::from_env`).

use std::ffi::OsString;
use std::path::PathBuf;

use super::Config;
use crate::error::{Error, Result};

/// The error for a variable whose value cannot be used.
fn invalid(name: &str, value: &str, accepted: &str) -> Error {
    Error::InvalidArgument(format!(
        "environment variable {name}={value:?} is not valid: it takes {accepted}; fix or unset it"
    ))
}

/// `config` with every variable that `var` finds applied on top.
pub(super) fn apply(mut config: Config, var: impl Fn(&str) -> Option<OsString>) -> Result<Config> {
    let text = |name: &str| -> Result<Option<String>> {
        match var(name) {
            None => Ok(None),
            Some(value) => value
                .into_string()
                .map(|v| Some(v.trim().to_owned()))
                .map_err(|v| invalid(name, &v.to_string_lossy(), "UTF-8 text")),
        }
    };
    if let Some(v) = text("RUSTYRAY_NUM_CPUS")? {
        config = config.num_cpus(count("RUSTYRAY_NUM_CPUS", &v, 1)?);
    }
    if let Some(v) = text("RUSTYRAY_NUM_GPUS")? {
        config = config.num_gpus(count("RUSTYRAY_NUM_GPUS", &v, 0)?);
    }
    if let Some(v) = text("RUSTYRAY_RESOURCES")? {
        for (name, amount) in resources("RUSTYRAY_RESOURCES", &v)? {
            config = config.resource(name, amount);
        }
    }
    if let Some(v) = text("RUSTYRAY_OBJECT_STORE_MEMORY")? {
        config = config.object_store_memory(size("RUSTYRAY_OBJECT_STORE_MEMORY", &v)?);
    }
    if let Some(v) = text("RUSTYRAY_SPILL_DIR")? {
        if v.is_empty() {
            return Err(invalid("RUSTYRAY_SPILL_DIR", &v, "a non-empty path"));
        }
        config = config.spill_dir(PathBuf::from(v));
    }
    if let Some(v) = text("RUSTYRAY_SPILL_LIMIT")? {
        config = config.spill_limit(size("RUSTYRAY_SPILL_LIMIT", &v)?);
    }
    if let Some(v) = text("RUSTYRAY_MAX_THREADS")? {
        match v.parse::<usize>() {
            Ok(n) if (1..=MAX_THREADS).contains(&n) => config = config.max_threads(n),
            _ => {
                return Err(invalid(
                    "RUSTYRAY_MAX_THREADS",
                    &v,
                    "an integer from 1 to 65536",
                ))
            }
        }
    }
    if let Some(v) = text("RUSTYRAY_PRINT_TASK_PANICS")? {
        config = config.print_task_panics(flag("RUSTYRAY_PRINT_TASK_PANICS", &v)?);
    }
    if let Some(v) = text("RUSTYRAY_RELEASE_MEMORY_WHEN_IDLE")? {
        config = config.release_memory_when_idle(flag("RUSTYRAY_RELEASE_MEMORY_WHEN_IDLE", &v)?);
    }
    if let Some(v) = text("RUSTYRAY_DASHBOARD")?.filter(|v| !v.is_empty()) {
        // Without the feature the variable is ignored with a warning: it may be set for
        // every program of a machine, and a program built without the dashboard still runs.
        if cfg!(not(feature = "dashboard")) {
            tracing::warn!(
                target: "rustyray::dashboard",
                "RUSTYRAY_DASHBOARD is set, but rustyray was built without its `dashboard` \
                 feature: no dashboard is served"
            );
        } else {
            match v.parse() {
                Ok(addr) => config = config.dashboard(addr),
                Err(_) => {
                    return Err(invalid(
                        "RUSTYRAY_DASHBOARD",
                        &v,
                        "an address and port, such as 127.0.0.1:8265",
                    ))
                }
            }
        }
    }
    if let Some(address) = text(ADDRESS)?.filter(|a| !a.is_empty()) {
        config = config.ray(address);
        if let Some(paths) = text("RUSTYRAY_CODE_SEARCH_PATH")? {
            for path in paths.split(':').filter(|p| !p.is_empty()) {
                config = config.code_search_path(path);
            }
        }
    }
    config.validate()?;
    Ok(config)
}

/// The most CPUs or GPUs a runtime takes.
pub(super) const MAX_COUNT: usize = 4096;
/// The most threads a runtime runs sync bodies on.
pub(super) const MAX_THREADS: usize = 65536;

fn flag(name: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(invalid(name, value, "`1`, `true`, `0` or `false`")),
    }
}

fn count(name: &str, value: &str, min: usize) -> Result<usize> {
    let accepted = format!("an integer from {min} to {MAX_COUNT}");
    match value.parse::<usize>() {
        Ok(n) if (min..=MAX_COUNT).contains(&n) => Ok(n),
        _ => Err(invalid(name, value, &accepted)),
    }
}

fn size(name: &str, value: &str) -> Result<u64> {
    const ACCEPTED: &str = "a size in bytes of at least 1, with an optional K, M, G or T suffix \
                            (powers of 1024), such as 536870912 or 512M";
    let upper = value.to_ascii_uppercase();
    let digits = upper.trim_end_matches(['B', 'I']);
    let (number, shift) = match digits.char_indices().last() {
        Some((i, 'K')) => (&digits[..i], 10),
        Some((i, 'M')) => (&digits[..i], 20),
        Some((i, 'G')) => (&digits[..i], 30),
        Some((i, 'T')) => (&digits[..i], 40),
        _ => (digits, 0),
    };
    number
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .filter(|&n| n >= 1)
        .ok_or_else(|| invalid(name, value, ACCEPTED))
}

fn resources(name: &str, value: &str) -> Result<Vec<(String, f64)>> {
    const ACCEPTED: &str =
        "name=amount pairs separated by commas, such as `disk=2,accelerator=0.5`, each amount \
         a finite number from 0 to 1e12";
    value
        .split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (key, amount) = pair
                .split_once('=')
                .ok_or_else(|| invalid(name, value, ACCEPTED))?;
            let amount: f64 = amount
                .trim()
                .parse()
                .map_err(|_| invalid(name, value, ACCEPTED))?;
            if key.trim().is_empty() || !(0.0..=super::MAX_RESOURCE).contains(&amount) {
                return Err(invalid(name, value, ACCEPTED));
            }
            Ok((key.trim().to_owned(), amount))
        })
        .collect()
}

/// The variable that lets a Ray worker keep freed memory mapped (see `os::keep_freed_heap`).
#[cfg(feature = "ray")]
pub(crate) const WORKER_KEEP_FREED: &str = "RUSTYRAY_WORKER_KEEP_FREED";

/// What a Ray worker does with freed memory (see `ray/kept_memory.rs`).
#[cfg(feature = "ray")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeepFreed {
    /// Keep about what the largest argument so far needed (the variable unset).
    Adaptive,
    /// Keep up to this many bytes, from the worker's start.
    Fixed(u64),
    /// Give freed memory back as glibc does by default (`off`).
    Off,
}

/// The policy [`WORKER_KEEP_FREED`] given as `value` (unset: `None`) names: a size of at most
/// 2 GiB (glibc's limit), `off`, or nothing.
#[cfg(feature = "ray")]
pub(crate) fn worker_keep_freed(value: Option<&str>) -> Result<KeepFreed> {
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(KeepFreed::Adaptive);
    };
    if value.trim().eq_ignore_ascii_case("off") {
        return Ok(KeepFreed::Off);
    }
    const ACCEPTED: &str = "`off`, or a size of at most 2G (glibc takes the threshold as an \
                            `int`) such as 256M; unset, a worker keeps about what its largest \
                            argument needed";
    let bytes = size(WORKER_KEEP_FREED, value)
        .ok()
        .filter(|&bytes| bytes <= i32::MAX as u64)
        .ok_or_else(|| invalid(WORKER_KEEP_FREED, value, ACCEPTED))?;
    Ok(KeepFreed::Fixed(bytes))
}

/// The variable that names a cluster to run on.
const ADDRESS: &str = "RUSTYRAY_ADDRESS";

/// Whether the environment names a cluster for the global runtime to run on.
#[cfg(feature = "ray")]
pub(crate) fn cluster_address_in_env() -> bool {
    std::env::var_os(ADDRESS).is_some_and(|a| !a.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "ray")]
    #[test]
    fn a_workers_kept_memory_is_adaptive_off_or_a_size_of_at_most_2g() {
        assert_eq!(worker_keep_freed(None).unwrap(), KeepFreed::Adaptive);
        assert_eq!(worker_keep_freed(Some(" ")).unwrap(), KeepFreed::Adaptive);
        assert_eq!(worker_keep_freed(Some("OFF")).unwrap(), KeepFreed::Off);
        assert_eq!(
            worker_keep_freed(Some("512M")).unwrap(),
            KeepFreed::Fixed(512 << 20)
        );
        for bad in ["3G", "lots", "0"] {
            let err = worker_keep_freed(Some(bad)).unwrap_err().to_string();
            assert!(
                err.contains(WORKER_KEEP_FREED) && err.contains(bad) && err.contains("off"),
                "{err}"
            );
        }
    }

    fn from(vars: &[(&str, &str)]) -> Result<Config> {
        let vars: Vec<(String, OsString)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        apply(Config::default(), |name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn every_field_is_read_from_its_variable() {
        let config = from(&[
            ("RUSTYRAY_NUM_CPUS", "3"),
            ("RUSTYRAY_NUM_GPUS", "1"),
            ("RUSTYRAY_RESOURCES", "disk=2, accelerator=0.5"),
            ("RUSTYRAY_OBJECT_STORE_MEMORY", "512M"),
            ("RUSTYRAY_SPILL_DIR", "/tmp/spill-here"),
            ("RUSTYRAY_SPILL_LIMIT", "2GiB"),
            ("RUSTYRAY_MAX_THREADS", "64"),
            ("RUSTYRAY_PRINT_TASK_PANICS", "true"),
            ("RUSTYRAY_RELEASE_MEMORY_WHEN_IDLE", "0"),
        ])
        .unwrap();
        assert_eq!(config.get_num_cpus(), 3);
        assert_eq!(config.get_num_gpus(), 1);
        assert_eq!(
            config.get_resources(),
            &[("disk".to_owned(), 2.0), ("accelerator".to_owned(), 0.5)]
        );
        assert_eq!(config.get_object_store_memory(), Some(512 << 20));
        assert_eq!(
            config.get_spill_dir(),
            Some(&PathBuf::from("/tmp/spill-here"))
        );
        assert_eq!(config.get_spill_limit(), Some(2 << 30));
        assert_eq!(config.get_max_threads(), 64);
        assert!(config.get_print_task_panics());
        assert!(!config.get_release_memory_when_idle());
        assert_eq!(from(&[]).unwrap(), Config::default());
        assert_eq!(
            from(&[("RUSTYRAY_OBJECT_STORE_MEMORY", "1048576")])
                .unwrap()
                .get_object_store_memory(),
            Some(1 << 20)
        );
    }

    #[test]
    fn bad_values_name_the_variable_and_what_it_accepts() {
        let cases = [
            ("RUSTYRAY_NUM_CPUS", "0", "an integer from 1 to 4096"),
            ("RUSTYRAY_NUM_CPUS", "two", "an integer from 1 to 4096"),
            ("RUSTYRAY_NUM_GPUS", "-1", "an integer from 0 to 4096"),
            ("RUSTYRAY_NUM_GPUS", "99999", "an integer from 0 to 4096"),
            ("RUSTYRAY_RESOURCES", "disk", "name=amount pairs"),
            ("RUSTYRAY_RESOURCES", "disk=-1", "name=amount pairs"),
            ("RUSTYRAY_RESOURCES", "=1", "name=amount pairs"),
            (
                "RUSTYRAY_OBJECT_STORE_MEMORY",
                "0",
                "a size in bytes of at least 1",
            ),
            (
                "RUSTYRAY_OBJECT_STORE_MEMORY",
                "lots",
                "a size in bytes of at least 1",
            ),
            (
                "RUSTYRAY_SPILL_LIMIT",
                "99999999999T",
                "a size in bytes of at least 1",
            ),
            ("RUSTYRAY_SPILL_DIR", "", "a non-empty path"),
            ("RUSTYRAY_MAX_THREADS", "0", "an integer from 1 to 65536"),
            (
                "RUSTYRAY_PRINT_TASK_PANICS",
                "yes",
                "`1`, `true`, `0` or `false`",
            ),
            (
                "RUSTYRAY_RELEASE_MEMORY_WHEN_IDLE",
                "off",
                "`1`, `true`, `0` or `false`",
            ),
        ];
        for (name, value, accepted) in cases {
            let err = from(&[(name, value)]).unwrap_err().to_string();
            assert!(err.contains(name), "{name}={value}: {err}");
            assert!(err.contains(accepted), "{name}={value}: {err}");
        }
        // A reserved resource name is caught by the same checks as `Config::resource`.
        let err = from(&[("RUSTYRAY_RESOURCES", "CPU=2")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`CPU`"), "{err}");
    }
}
