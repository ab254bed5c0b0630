//! Simple parallel model selection, ported from Ray's tutorial of that name
//! (`doc/source/ray-core/examples/plot_hyperparameter.ipynb` in ray-project/ray; see README.md
//! here): random hyperparameters are tried in parallel tasks, and the driver takes the results
//! as they finish (`wait`), keeping the best. The tutorial trains a PyTorch network on MNIST;
//! this port (and the Python it is measured against) trains a logistic regression on a
//! synthetic two-class dataset with minibatch SGD and momentum, so neither side needs a GPU
//! or a download.
//!
//! `cargo run --release --example model_selection [--quick]`
use std::time::Instant;

use rustyray::prelude::*;

const FEATURES: usize = 20;

/// SplitMix64, for reproducible data and hyperparameters.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.next().max(1e-12), self.next());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Config {
    learning_rate: f64,
    momentum: f64,
    batch_size: usize,
}

/// Points around a hidden separating plane, labels flipped 5% of the time.
fn dataset(points: usize, seed: u64) -> (Vec<[f64; FEATURES]>, Vec<f64>) {
    let mut rng = Rng(seed);
    let hidden: Vec<f64> = (0..FEATURES).map(|_| rng.normal()).collect();
    let mut xs = Vec::with_capacity(points);
    let mut ys = Vec::with_capacity(points);
    for _ in 0..points {
        let x: [f64; FEATURES] = std::array::from_fn(|_| rng.normal());
        let side = x.iter().zip(&hidden).map(|(a, b)| a * b).sum::<f64>() > 0.0;
        let flipped = rng.next() < 0.05;
        xs.push(x);
        ys.push(if side != flipped { 1.0 } else { 0.0 });
    }
    (xs, ys)
}

/// Trains for one epoch with `config` and returns the accuracy on held-out data (Ray's
/// `evaluate_hyperparameters`).
#[rustyray::remote]
fn evaluate_hyperparameters(config: Config, points: usize) -> f64 {
    let (xs, ys) = dataset(points, 7);
    let (train, test) = xs.split_at(points * 4 / 5);
    let (train_y, test_y) = ys.split_at(points * 4 / 5);
    let (mut w, mut velocity) = ([0.0; FEATURES + 1], [0.0; FEATURES + 1]);
    for (batch, labels) in train
        .chunks(config.batch_size)
        .zip(train_y.chunks(config.batch_size))
    {
        let mut grad = [0.0; FEATURES + 1];
        for (x, y) in batch.iter().zip(labels) {
            let z = w[FEATURES] + x.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>();
            let error = 1.0 / (1.0 + (-z).exp()) - y;
            for (g, xi) in grad.iter_mut().zip(x) {
                *g += error * xi;
            }
            grad[FEATURES] += error;
        }
        for i in 0..=FEATURES {
            velocity[i] =
                config.momentum * velocity[i] - config.learning_rate * grad[i] / batch.len() as f64;
            w[i] += velocity[i];
        }
    }
    let correct = test
        .iter()
        .zip(test_y)
        .filter(|(x, y)| {
            let z = w[FEATURES] + x.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>();
            (z > 0.0) == (**y > 0.5)
        })
        .count();
    correct as f64 / test.len() as f64
}

fn main() -> anyhow::Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    println!("{}", run(quick)?);
    Ok(())
}

/// Runs the search on the current runtime; its result (every setting's accuracy, in a fixed
/// order, and the best), the same on every backend.
pub fn run(quick: bool) -> anyhow::Result<String> {
    let started = Instant::now();
    let (evaluations, points) = if quick { (4, 2_000) } else { (10, 200_000) };
    let mut rng = Rng(42);
    let mut configs = std::collections::HashMap::new();
    let mut pending: Vec<ObjectRef<f64>> = (0..evaluations)
        .map(|_| {
            let config = Config {
                learning_rate: 10f64.powf(-4.0 + 3.0 * rng.next()),
                momentum: 0.1 + 0.8 * rng.next(),
                batch_size: [16, 32, 64][(rng.next() * 3.0) as usize % 3],
            };
            let r = evaluate_hyperparameters::remote(config.clone(), points);
            configs.insert(r.id(), config);
            r
        })
        .collect();
    let (mut best, mut best_config) = (0.0, None);
    let mut tried = Vec::new();
    while !pending.is_empty() {
        let (done, rest) = rustyray::wait(&pending, 1, None);
        pending = rest;
        let accuracy = rustyray::get(&done[0])?;
        let config = &configs[&done[0].id()];
        println!("accuracy {accuracy:.3} with {config:?}");
        tried.push(format!("accuracy {accuracy:.3} with {config:?}"));
        if accuracy > best {
            (best, best_config) = (accuracy, Some(config.clone()));
        }
    }
    println!("best accuracy {best:.3} with {best_config:?}");
    println!("work took {:.3} s", started.elapsed().as_secs_f64());
    anyhow::ensure!(best > 0.8, "some setting learns the plane");
    tried.sort();
    Ok(format!("{}\nbest accuracy {best:.3}", tried.join("\n")))
}
