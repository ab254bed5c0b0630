//! Handing each task's GPUs to a child process: a task asks for `num_gpus = 1`, reads which GPU
//! it got with `rustyray::gpu_ids()`, and starts its worker process with `CUDA_VISIBLE_DEVICES`
//! set to it, so the child (a CUDA program, a Python trainer) uses that GPU only.
//!
//! This machine may have no GPU: the runtime is told it has 2 (`Config::num_gpus`), and the
//! child is `sh`, which prints what it was given.
//!
//! `cargo run --example gpu_workers [--quick]`
use std::process::Command;

use rustyray::prelude::*;

#[rustyray::remote(num_gpus = 1)]
fn run_on_my_gpu(job: u32) -> anyhow::Result<String> {
    let devices: Vec<String> = rustyray::gpu_ids().iter().map(usize::to_string).collect();
    let output = Command::new("sh")
        .arg("-c")
        .arg("echo \"job $JOB sees CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES\"")
        .env("CUDA_VISIBLE_DEVICES", devices.join(","))
        .env("JOB", job.to_string())
        .output()?;
    anyhow::ensure!(output.status.success(), "the child failed: {output:?}");
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

fn main() -> anyhow::Result<()> {
    let jobs = if std::env::args().any(|a| a == "--quick") {
        4
    } else {
        8
    };
    let rt = rustyray::Runtime::new(rustyray::Config::default().num_cpus(4).num_gpus(2))?;
    let _guard = rt.enter();
    // Two GPUs: at most two jobs run at once, each on a GPU of its own.
    let lines: Vec<ObjectRef<String>> = (0..jobs).map(run_on_my_gpu::remote).collect();
    for line in rustyray::get_all(&lines)? {
        println!("{line}");
    }
    Ok(())
}
