//! Streams and several returns (group `streams`): items of one streaming task read as they
//! come (as refs read with `get`, and as values with `values()`), against the same items sent
//! through an `std::sync::mpsc` channel from a thread; and
//! `num_returns = 2` tasks against tasks returning one value.

use rustyray::ObjectRef;

use crate::measure::{paired, Effort, Line};
use crate::workloads::line;

#[rustyray::remote(streaming)]
fn numbers(n: u64) -> impl Iterator<Item = u64> {
    0..n
}

#[rustyray::remote(num_returns = 2)]
fn pair(x: u64) -> (u64, u64) {
    (x, x + 1)
}

#[rustyray::remote]
fn single(x: u64) -> u64 {
    x
}

pub(crate) fn lines(e: Effort) -> Vec<Line> {
    let mut out = Vec::new();
    let n = e.size(200_000, 20_000) as u64;
    let expected: u64 = (0..n).sum();
    let stream = || {
        let sum: u64 = numbers::remote(n).map(|r| rustyray::get(&r).unwrap()).sum();
        assert_eq!(sum, expected);
    };
    let channel = || {
        let (tx, rx) = std::sync::mpsc::channel();
        let producer = std::thread::spawn(move || {
            for i in 0..n {
                tx.send(i).unwrap();
            }
        });
        assert_eq!(rx.iter().sum::<u64>(), expected);
        producer.join().unwrap();
    };
    let (ours, raw) = paired(e, n as usize, stream, &channel);
    out.push(line(
        "stream items, read as they come (extra)",
        "items",
        ours,
        Some(("mpsc channel from a thread", raw)),
    ));
    let values = || {
        let sum: u64 = numbers::remote(n).values().map(|v| v.unwrap()).sum();
        assert_eq!(sum, expected);
    };
    let (ours, raw) = paired(e, n as usize, values, &channel);
    out.push(line(
        "stream item values, values() (extra)",
        "items",
        ours,
        Some(("mpsc channel from a thread", raw)),
    ));

    let batch = 1_000;
    let batches = e.size(50, 5);
    let split = || {
        for _ in 0..batches {
            let parts: Vec<(ObjectRef<u64>, ObjectRef<u64>)> =
                (0..batch).map(pair::remote).collect();
            let (a, b): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
            rustyray::get_all(&a).unwrap();
            rustyray::get_all(&b).unwrap();
        }
    };
    let one = || {
        for _ in 0..batches {
            let refs: Vec<ObjectRef<u64>> = (0..batch).map(single::remote).collect();
            rustyray::get_all(&refs).unwrap();
        }
    };
    let (ours, raw) = paired(e, batch as usize * batches, split, one);
    out.push(line(
        "num_returns = 2 tasks (extra)",
        "tasks",
        ours,
        Some(("single-return tasks", raw)),
    ));
    out
}
