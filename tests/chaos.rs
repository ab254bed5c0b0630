//! A small chaos run (the `chaos` binary, `src/bin/chaos.rs`): injected panics, errors,
//! crashes and cancels; every result right or failed as documented, nothing stuck, and the
//! caught panics not printed.

use std::process::Command;

#[test]
fn chaos_loses_nothing_and_stays_quiet() {
    let out = Command::new(env!("CARGO_BIN_EXE_chaos"))
        .args(["--tasks", "20000", "--calls", "5000"])
        .env_remove("RUSTYRAY_ADDRESS")
        .env_remove("RUSTYRAY_PRINT_TASK_PANICS")
        .output()
        .expect("the chaos binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chaos failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("none stuck"), "{stdout}");
    // About 2,000 tries panicked; each is in its task's error, none printed.
    assert!(
        stderr.lines().count() < 200,
        "{} lines on stderr:\n{stderr}",
        stderr.lines().count()
    );
}
