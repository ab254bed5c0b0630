//! The quickstart's chain, fan-out and actor, run on a Ray cluster.
//!
//! ```text
//! ray start --head --node-ip-address=127.0.0.1 --port=6379
//! cargo build --release            # builds the driver and the cdylib the workers load
//! mkdir -p target/ray-code && cp target/release/libray_cluster.so target/ray-code/
//! RUSTYRAY_ADDRESS=127.0.0.1:6379 RUSTYRAY_CODE_SEARCH_PATH=$PWD/target/ray-code \
//!     cargo run --release --bin ray-cluster
//! ```
//!
//! Copy the cdylib again after every rebuild: Ray's workers load the copy.
//!
//! Without RUSTYRAY_ADDRESS, the same program runs embedded.
use ray_cluster::{square, sum, Counter};
use rustyray::prelude::*;

#[rustyray::main]
fn main() -> rustyray::Result<()> {
    let where_ = std::env::var("RUSTYRAY_ADDRESS")
        .map(|a| format!("the Ray cluster at {a}"))
        .unwrap_or_else(|_| "the embedded runtime".to_owned());
    println!("running on {where_}");

    let four = square::remote(2);
    let sixteen = square::remote(&four);
    println!("square(square(2)) = {}", rustyray::get(&sixteen)?);

    let squares: Vec<ObjectRef<u64>> = (1..=100).map(square::remote).collect();
    let total = sum::remote(rustyray::get_all(&squares)?);
    println!("sum of the first 100 squares = {}", rustyray::get(&total)?);

    let counter: ActorHandle<Counter> = Counter::remote(0);
    for r in &squares[..10] {
        counter.add(r);
    }
    println!("counter after 10 adds = {}", rustyray::get(&counter.get())?);
    Ok(())
}
