//! A parameter server: one actor holds the model's weights; worker tasks compute gradients
//! against the current weights (passed to them as a ref) and push updates to the server through
//! its handle, which travels into the tasks as an argument.
//!
//! The model is linear regression, `y = w·x`, fitted by data-parallel gradient descent.
//!
//! `cargo run --release --example parameter_server [--quick]`
use rustyray::prelude::*;

const DIM: usize = 8;

#[rustyray::actor]
struct ParameterServer {
    weights: Vec<f64>,
    learning_rate: f64,
    updates: u64,
}

#[rustyray::actor]
impl ParameterServer {
    fn new(learning_rate: f64) -> Self {
        ParameterServer {
            weights: vec![0.0; DIM],
            learning_rate,
            updates: 0,
        }
    }

    fn weights(&self) -> Vec<f64> {
        self.weights.clone()
    }

    /// Applies one gradient and returns the weights after it.
    fn apply(&mut self, gradient: Vec<f64>) -> Vec<f64> {
        for (w, g) in self.weights.iter_mut().zip(gradient) {
            *w -= self.learning_rate * g;
        }
        self.updates += 1;
        self.weights.clone()
    }

    fn updates(&self) -> u64 {
        self.updates
    }
}

/// The true weights the workers should recover.
fn truth() -> Vec<f64> {
    (0..DIM).map(|i| i as f64 - 3.5).collect()
}

/// A deterministic shard of training data: `samples` points with `y = truth·x`.
fn shard(seed: u64, samples: usize) -> Vec<(Vec<f64>, f64)> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
        ((state >> 33) as f64 / (1u64 << 31) as f64) - 0.5
    };
    let w = truth();
    (0..samples)
        .map(|_| {
            let x: Vec<f64> = (0..DIM).map(|_| next()).collect();
            let y = x.iter().zip(&w).map(|(a, b)| a * b).sum();
            (x, y)
        })
        .collect()
}

/// A worker step: the mean-squared-error gradient of one shard at `weights`, pushed to the
/// server. Returns the shard's loss.
#[rustyray::remote]
fn worker_step(weights: Vec<f64>, seed: u64, server: ActorHandle<ParameterServer>) -> f64 {
    let data = shard(seed, 256);
    let mut gradient = vec![0.0; DIM];
    let mut loss = 0.0;
    for (x, y) in &data {
        let err = x.iter().zip(&weights).map(|(a, b)| a * b).sum::<f64>() - y;
        loss += err * err;
        for (g, xi) in gradient.iter_mut().zip(x) {
            *g += 2.0 * err * xi / data.len() as f64;
        }
    }
    server.apply(gradient); // fire and forget: the server orders the updates
    loss / data.len() as f64
}

#[rustyray::main]
fn main() -> rustyray::Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, workers) = if quick { (20, 4) } else { (200, 8) };
    let server = ParameterServer::remote(0.5);
    let mut weights: ObjectRef<Vec<f64>> = server.weights();
    for round in 0..rounds {
        // Every worker of a round reads the same weights: one ref, resolved once per task.
        let losses: Vec<ObjectRef<f64>> = (0..workers)
            .map(|w| worker_step::remote(&weights, (round * workers + w) as u64, server.clone()))
            .collect();
        let losses = rustyray::get_all(&losses)?;
        weights = server.weights();
        if round % (rounds / 5).max(1) == 0 || round == rounds - 1 {
            let mean = losses.iter().sum::<f64>() / losses.len() as f64;
            println!("round {round:>4}: mean loss {mean:.6}");
        }
    }
    let fitted = rustyray::get(&weights)?;
    let error: f64 = fitted
        .iter()
        .zip(truth())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    println!(
        "{} updates; largest weight error {error:.4}",
        rustyray::get(&server.updates())?
    );
    assert!(error < 0.05, "the model should converge");
    Ok(())
}
