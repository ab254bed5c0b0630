//! Monte Carlo estimation of π, ported from Ray's Core tutorial
//! (`doc/source/ray-core/doc_code/monte_carlo_pi.py` in ray-project/ray; see README.md here):
//! sampling tasks throw random points at the unit square and report their progress to an
//! actor; the driver shows the progress and combines the counts.
//!
//! `cargo run --release --example monte_carlo_pi [--quick]`
use std::time::Instant;

use rustyray::prelude::*;

/// Where the sampling tasks report how far they got (Ray's `ProgressActor`).
#[rustyray::actor]
struct ProgressActor {
    total: u64,
    done: std::collections::HashMap<u32, u64>,
}

#[rustyray::actor]
impl ProgressActor {
    fn new(total: u64) -> Self {
        ProgressActor {
            total,
            done: Default::default(),
        }
    }

    fn report_progress(&mut self, task: u32, samples_done: u64) {
        self.done.insert(task, samples_done);
    }

    fn get_progress(&self) -> f64 {
        self.done.values().sum::<u64>() as f64 / self.total as f64
    }
}

/// Counts how many of `samples` random points fall inside the quarter circle, reporting every
/// million (Ray's `sampling_task`). The generator is SplitMix64, seeded by the task's id.
#[rustyray::remote]
fn sampling_task(samples: u64, task: u32, progress: ActorHandle<ProgressActor>) -> u64 {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(u64::from(task) + 1);
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut inside = 0;
    for i in 1..=samples {
        let (x, y) = (next(), next());
        if x * x + y * y <= 1.0 {
            inside += 1;
        }
        if i % 1_000_000 == 0 {
            drop(progress.report_progress(task, i)); // fire-and-forget, as in Ray
        }
    }
    drop(progress.report_progress(task, samples));
    inside
}

fn main() -> anyhow::Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    println!("{}", run(quick)?);
    Ok(())
}

/// Runs the estimate on the current runtime; its result, the same on every backend.
pub fn run(quick: bool) -> anyhow::Result<String> {
    let started = Instant::now();
    let (tasks, per_task): (u32, u64) = if quick {
        (10, 200_000)
    } else {
        (10, 10_000_000)
    };
    let total = u64::from(tasks) * per_task;

    let progress = ProgressActor::remote(total);
    let results: Vec<ObjectRef<u64>> = (0..tasks)
        .map(|task| sampling_task::remote(per_task, task, &progress))
        .collect();
    // Ray's driver polls the actor every second; here each finished task prompts a look.
    for _ in rustyray::as_completed(&results) {
        let done = rustyray::get(&progress.get_progress())?;
        println!("Progress: {:.0}%", done * 100.0);
    }
    let inside: u64 = rustyray::get_all(&results)?.iter().sum();
    let pi = 4.0 * inside as f64 / total as f64;
    println!("work took {:.3} s", started.elapsed().as_secs_f64());
    anyhow::ensure!((pi - std::f64::consts::PI).abs() < 0.01, "π is off: {pi}");
    Ok(format!("Estimated value of π is: {pi}"))
}
