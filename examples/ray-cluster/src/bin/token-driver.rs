//! A driver of a Ray cluster with token authentication on, given its token through
//! `Config::ray_auth_token`. `.ci/ray` starts such a head and runs it twice:
//!
//! ```text
//! export RUSTYRAY_ADDRESS=127.0.0.1:6379 RUSTYRAY_CODE_SEARCH_PATH=target/ray-code \
//!     RUSTYRAY_TEST_AUTH_TOKEN=<the head's token>
//! cargo run --release --bin token-driver -- --expect-refusal   # without RAY_AUTH_MODE
//! RAY_AUTH_MODE=token cargo run --release --bin token-driver
//! ```
//!
//! Without `RAY_AUTH_MODE=token` (which Ray reads only when the driver starts), connecting must
//! fail with an error that says to set it, never abort. With it, the driver runs a task, an
//! actor's calls and a `put`. Each run prints `token-driver: ok` when it went so.
use ray_cluster::{square, Counter};
use rustyray::Config;

fn main() {
    let token = std::env::var("RUSTYRAY_TEST_AUTH_TOKEN").expect("RUSTYRAY_TEST_AUTH_TOKEN");
    // RUSTYRAY_ADDRESS and RUSTYRAY_CODE_SEARCH_PATH say where; the token comes from here.
    let config = Config::from_env()
        .expect("the configuration in the environment")
        .ray_auth_token(token);
    assert!(config.get_ray_address().is_some(), "set RUSTYRAY_ADDRESS");
    if std::env::args().any(|a| a == "--expect-refusal") {
        match rustyray::init(config) {
            Err(error) if error.to_string().contains("RAY_AUTH_MODE=token") => {
                println!("token-driver: refused as it should be: {error}");
                println!("token-driver: ok");
            }
            other => println!("token-driver: FAILED: connecting gave {other:?}"),
        }
        return;
    }
    rustyray::init(config).expect("connect to the Ray cluster");
    let task = rustyray::get(&square::remote(7)).expect("a task");
    let counter = Counter::remote(1);
    let calls = rustyray::get_all(&[counter.add(1), counter.add(2)]).expect("an actor's calls");
    let put = rustyray::get(&rustyray::put("kept".to_owned()).unwrap()).expect("a put");
    assert_eq!((task, calls, put.as_str()), (49, vec![2, 4], "kept"));
    rustyray::shutdown();
    println!("token-driver: ok");
}
