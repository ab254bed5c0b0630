//! The progress bar of `get_all_with_progress` draws nothing when stderr is not a terminal.
//!
//! The test runs itself again as a child process whose stderr is a pipe, and checks what the
//! child wrote there.

mod common;

use std::process::Command;

use rustyray::ObjectRef;

const CHILD: &str = "RUSTYRAY_PROGRESS_TEST_CHILD";

#[rustyray::remote]
fn slow(i: u64) -> u64 {
    std::thread::sleep(std::time::Duration::from_millis(1));
    i
}

#[test]
fn the_progress_bar_draws_nothing_when_stderr_is_not_a_terminal() {
    if std::env::var_os(CHILD).is_some() {
        // The child: wait on enough slow tasks that a visible bar would be drawn many times.
        let rt = common::runtime(2);
        let _guard = rt.enter();
        let refs: Vec<ObjectRef<u64>> = (0..400u64).map(slow::remote).collect();
        let values = rustyray::get_all_with_progress(&refs, "progress-test-label").unwrap();
        assert_eq!(values.len(), 400);
        println!("child done");
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_progress_bar_draws_nothing_when_stderr_is_not_a_terminal",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("child done"),
        "{stdout}\n{stderr}"
    );
    assert!(
        !stderr.contains("progress-test-label"),
        "a bar was drawn: {stderr}"
    );
    assert!(
        !stderr.contains('█') && !stderr.contains("400/400"),
        "a bar was drawn: {stderr}"
    );
}
