//! The root crate's streaming pipeline and its ports of Ray's tutorials (`examples/ray_docs`),
//! run on the embedded runtime and then on the Ray cluster at `RUSTYRAY_ADDRESS`: each result
//! must be the same on both. Prints `ported: ok` last when they all agree.
//!
//! ```text
//! RUSTYRAY_ADDRESS=127.0.0.1:6379 RUSTYRAY_CODE_SEARCH_PATH=$PWD/target/ray-code \
//!     cargo run --release --bin ported
//! ```
use ray_cluster::{map_reduce, model_selection, monte_carlo_pi, streaming_pipeline};
use rustyray::{Config, Runtime};

type Example = (&'static str, fn(bool) -> anyhow::Result<String>);

const EXAMPLES: [Example; 4] = [
    ("streaming_pipeline", streaming_pipeline::run),
    ("monte_carlo_pi", monte_carlo_pi::run),
    ("map_reduce", map_reduce::run),
    ("model_selection", model_selection::run),
];

fn main() -> anyhow::Result<()> {
    let embedded = Runtime::new(Config::default())?;
    let here: Vec<String> = {
        let _entered = embedded.enter();
        EXAMPLES
            .iter()
            .map(|(name, run)| run(true).map_err(|e| e.context(format!("{name}, embedded"))))
            .collect::<anyhow::Result<_>>()?
    };
    embedded.shutdown();

    let config = Config::from_env()?;
    anyhow::ensure!(
        std::env::var_os("RUSTYRAY_ADDRESS").is_some(),
        "set RUSTYRAY_ADDRESS to the cluster's head (and RUSTYRAY_CODE_SEARCH_PATH)"
    );
    rustyray::init(config)?;
    let mut differ = Vec::new();
    for ((name, run), expected) in EXAMPLES.iter().zip(&here) {
        let there = run(true).map_err(|e| e.context(format!("{name}, on Ray")))?;
        if &there == expected {
            println!("{name}: the same on Ray as embedded:\n{there}");
        } else {
            println!("{name}: DIFFERS\nembedded:\n{expected}\non Ray:\n{there}");
            differ.push(*name);
        }
    }
    rustyray::shutdown();
    anyhow::ensure!(differ.is_empty(), "results differ: {differ:?}");
    println!("ported: ok");
    Ok(())
}
