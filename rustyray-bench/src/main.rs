//! RustyRay's benchmark binary.
//!
//! Runs Ray's microbenchmark set (`ray microbenchmark`) under Ray's names, plus lines Ray cannot
//! do well, each beside its raw floor measured in the same process and run: the least work that
//! does the same thing with tokio, channels, a locked map or `memcpy`. Figures are printed per
//! second with the ratio to the floor and to Ray's figure (ANCHORS.md), and written as JSON.
//!
//! ```text
//! cargo run --release -p rustyray-bench                 # full run
//! cargo run --release -p rustyray-bench -- --quick      # smoke run (CI)
//! cargo run --release -p rustyray-bench -- --filter actor   # one group: tasks, actor,
//!                                                           # objects, chain, memory
//! cargo run --release -p rustyray-bench -- --soak 100   # 100 batches of 500k no-op tasks:
//!                                                       # RSS and threads per batch
//! ```

#[cfg(feature = "dashboard")]
mod dashboard;
mod large;
mod measure;
mod scheduling;
mod soak;
mod streams;
mod workloads;

use measure::{Effort, Line};
use rustyray::{Config, Runtime};

struct Args {
    effort: Effort,
    json: std::path::PathBuf,
    filter: Option<String>,
    /// `--memory-probe NAME`: runs one memory probe in this process and prints its figure.
    probe: Option<String>,
    /// `--soak BATCHES`: run the soak instead of the benchmarks.
    soak: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut parsed = Args {
        effort: Effort {
            quick: false,
            rounds: 5,
        },
        json: std::path::PathBuf::from("target/rustyray-bench.json"),
        filter: None,
        soak: None,
        probe: None,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => {
                parsed.effort = Effort {
                    quick: true,
                    rounds: 1,
                }
            }
            "--json" => parsed.json = args.next().ok_or("--json takes a path")?.into(),
            "--filter" => parsed.filter = Some(args.next().ok_or("--filter takes a word")?),
            "--memory-probe" => {
                parsed.probe = Some(args.next().ok_or("--memory-probe takes a probe's name")?)
            }
            "--soak" => {
                let batches = args.next().ok_or("--soak takes a number of batches")?;
                parsed.soak =
                    Some(batches.parse().map_err(|_| {
                        format!("--soak takes a number of batches, not `{batches}`")
                    })?);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(parsed)
}

fn print(lines: &[Line]) {
    println!(
        "{:<48} {:>14} {:>7}  {:>14} {:>9}  {:>10}",
        "benchmark", "RustyRay", "unit", "floor", "vs floor", "vs Ray"
    );
    for l in lines {
        let floor = l
            .floor
            .as_ref()
            .map_or("-".to_owned(), |(_, f)| format!("{f:.1}"));
        let vs_floor = l.vs_floor().map_or("-".to_owned(), |x| format!("{x:.2}x"));
        let vs_ray = l.vs_ray().map_or("-".to_owned(), |x| {
            if x < 10.0 {
                format!("{x:.2}x")
            } else {
                format!("{x:.0}x")
            }
        });
        println!(
            "{:<48} {:>14.1} {:>7}  {:>14} {:>9}  {:>10}",
            l.name, l.ours, l.unit, floor, vs_floor, vs_ray
        );
    }
    println!("\nvs floor: how many times the floor is faster (1.00x = as fast); vs Ray: ours / Ray 2.60 here");
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("{message}");
            }
            eprintln!(
                "usage: rustyray-bench [--quick] [--json PATH] [--filter WORD] [--soak BATCHES]"
            );
            std::process::exit(if message.is_empty() { 0 } else { 2 });
        }
    };
    // A memory probe runs in a process of its own (see `workloads::memory_probe`).
    if let Some(probe) = args.probe.as_deref() {
        println!("{}", workloads::memory_probe(probe, args.effort));
        return;
    }
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let floor = workloads::Floor {
        tokio: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cpus)
            .build()
            .expect("tokio starts"),
    };
    // The `RUSTYRAY_*` variables apply (say `RUSTYRAY_RELEASE_MEMORY_WHEN_IDLE=0` for the soak);
    // the CPU count is the machine's, as for the floor.
    let config = match Config::from_env() {
        Ok(config) => config.num_cpus(cpus),
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(2);
        }
    };
    let rt = Runtime::new(config).expect("runtime starts");
    if let Some(batches) = args.soak {
        let _guard = rt.enter();
        let per_batch = if args.effort.quick { 50_000 } else { 500_000 };
        soak::run(batches, per_batch, 0);
        soak::run(batches, per_batch, soak::HELD);
        return;
    }
    let started = std::time::Instant::now();
    let mut lines = {
        let _guard = rt.enter();
        workloads::all(args.effort, &floor, cpus, args.filter.as_deref())
    };
    rt.shutdown();
    #[cfg(feature = "dashboard")]
    if args
        .filter
        .as_deref()
        .is_none_or(|f| "dashboard".contains(f))
    {
        lines.extend(dashboard::lines(args.effort, cpus));
    }
    if args.filter.as_deref().is_none_or(|f| "memory".contains(f)) {
        lines.push(workloads::memory_line(
            "memory per queued task",
            "queued",
            args.effort,
        ));
        lines.push(workloads::memory_line(
            "memory per held small object",
            "held",
            args.effort,
        ));
    }
    println!(
        "RustyRay benchmarks: {cpus} CPUs, {} mode, median of {} rounds, {:.1} s\n",
        if args.effort.quick { "quick" } else { "full" },
        args.effort.rounds,
        started.elapsed().as_secs_f64()
    );
    print(&lines);
    if let Some(parent) = args.json.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    match serde_json::to_string_pretty(&lines) {
        Ok(json) => match std::fs::write(&args.json, json) {
            Ok(()) => println!("JSON: {}", args.json.display()),
            Err(e) => eprintln!("could not write {}: {e}", args.json.display()),
        },
        Err(e) => eprintln!("could not encode the results: {e}"),
    }
}
