//! Timing, the result table, and Ray's figures to compare with.

use std::time::{Duration, Instant};

use serde::Serialize;

/// How hard to measure: a quick smoke run (CI) or a full one.
#[derive(Clone, Copy)]
pub(crate) struct Effort {
    pub(crate) quick: bool,
    /// Timed rounds per workload; the median is reported.
    pub(crate) rounds: usize,
}

impl Effort {
    /// `full` when measuring, `quick` in smoke runs.
    pub(crate) fn size(&self, full: usize, quick: usize) -> usize {
        if self.quick {
            quick
        } else {
            full
        }
    }
}

/// One line of the report.
#[derive(Serialize, Clone, Debug)]
pub(crate) struct Line {
    /// Ray's name for the workload (or ours, for the extra lines).
    pub(crate) name: String,
    /// What the figures count, per second unless the unit says otherwise.
    pub(crate) unit: &'static str,
    pub(crate) ours: f64,
    /// The raw floor measured in the same run: what it is and its figure.
    pub(crate) floor: Option<(String, f64)>,
    /// Ray 2.60's figure on this machine kind (ANCHORS.md), where there is one.
    pub(crate) ray: Option<f64>,
    /// Whether a higher figure is better (rates) or lower (latency, bytes).
    pub(crate) higher_is_better: bool,
}

impl Line {
    /// How many times slower than the floor (1.0 = as fast as the floor).
    pub(crate) fn vs_floor(&self) -> Option<f64> {
        let (_, floor) = self.floor.as_ref()?;
        Some(if self.higher_is_better {
            floor / self.ours
        } else {
            self.ours / floor
        })
    }

    /// How many times Ray's figure.
    pub(crate) fn vs_ray(&self) -> Option<f64> {
        self.ray.map(|ray| self.ours / ray)
    }
}

/// Runs `work` (which performs `ops` operations) once to warm up and `rounds` times timed;
/// returns the median rate in operations per second.
pub(crate) fn rate(effort: Effort, ops: usize, mut work: impl FnMut()) -> f64 {
    work();
    let rates: Vec<f64> = (0..effort.rounds)
        .map(|_| {
            let started = Instant::now();
            work();
            ops as f64 / started.elapsed().as_secs_f64().max(1e-9)
        })
        .collect();
    median(rates)
}

/// Runs `ours` and `floor` (each performing `ops` operations) once each to warm up, then
/// `rounds` times each, alternating which goes first; returns both median rates. Measured
/// side by side, both see the same machine: a slow spell of a noisy host lands on both.
pub(crate) fn paired(
    effort: Effort,
    ops: usize,
    mut ours: impl FnMut(),
    mut floor: impl FnMut(),
) -> (f64, f64) {
    ours();
    floor();
    let timed = |work: &mut dyn FnMut()| {
        let started = Instant::now();
        work();
        ops as f64 / started.elapsed().as_secs_f64().max(1e-9)
    };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for round in 0..effort.rounds {
        if round % 2 == 0 {
            a.push(timed(&mut ours));
            b.push(timed(&mut floor));
        } else {
            b.push(timed(&mut floor));
            a.push(timed(&mut ours));
        }
    }
    (median(a), median(b))
}

fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// Percentile `p` (0..=100) of sorted durations, in microseconds.
pub(crate) fn percentile_us(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() - 1) as f64 * p / 100.0).round() as usize;
    sorted[index].as_secs_f64() * 1e6
}

/// Ray 2.60's figures on this machine kind, from `../shared/ANCHORS.md`.
pub(crate) fn ray(name: &str) -> Option<f64> {
    Some(match name {
        "single client tasks sync" => 714.0,
        "single client tasks async" => 2_224.0,
        "multi client tasks async" => 2_189.0,
        "single client tasks and get batch" => 2.31,
        "1:1 actor calls sync" => 1_392.0,
        "1:1 actor calls async" => 4_834.0,
        "1:1 actor calls concurrent" => 5_191.0,
        "1:n actor calls async" => 4_203.0,
        "n:n actor calls async" => 4_775.0,
        "n:n actor calls with arg async" => 1_633.0,
        "1:1 async-actor calls sync" => 1_119.0,
        "1:1 async-actor calls async" => 2_884.0,
        "1:1 async-actor calls with args async" => 2_213.0,
        "1:n async-actor calls async" => 2_879.0,
        "n:n async-actor calls async" => 2_607.0,
        "single client put calls" => 1_289.0,
        "multi client put calls" => 1_419.0,
        "single client get calls" => 11_927.0,
        "single client put gigabytes" => 1.76,
        "multi client put gigabytes" => 13.35,
        "single client wait 1k refs" => 1.94,
        "single client get object containing 10k refs" => 13.68,
        "placement group create/removal" => 459.0,
        _ => return None,
    })
}
