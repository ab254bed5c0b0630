//! Large objects without copies (group `objects`): tasks reading one large object by `&T`, by
//! `Arc<T>` and by `T` kept by the caller (a copy per task), each against plain threads summing
//! one shared slice; and a tree merge whose inputs are moved into each merge, against the same
//! merge done inline.

use std::sync::Arc;

use rustyray::ObjectRef;

use crate::measure::{paired, Effort, Line};
use crate::workloads::line;

#[rustyray::remote]
fn sum_borrowed(v: &Vec<u64>) -> u64 {
    v.iter().sum()
}

#[rustyray::remote]
fn sum_shared(v: Arc<Vec<u64>>) -> u64 {
    v.iter().sum()
}

#[rustyray::remote]
fn sum_owned(v: Vec<u64>) -> u64 {
    v.iter().sum()
}

#[rustyray::remote]
fn merge(mut a: Vec<u64>, b: Vec<u64>) -> Vec<u64> {
    a.extend_from_slice(&b);
    a
}

/// Tasks over one object, and leaves of the tree merge.
const TASKS: usize = 16;
const LEAVES: usize = 16;

/// Submits one task reading the object.
type Reader = fn(&ObjectRef<Vec<u64>>) -> ObjectRef<u64>;

pub(crate) fn lines(e: Effort, cpus: usize) -> Vec<Line> {
    let mut out = Vec::new();
    let len = e.size(64 << 20, 8 << 20) / 8; // a 64 MiB (quick: 8 MiB) Vec<u64>
    let data: Vec<u64> = (0..len as u64).collect();
    let expected: u64 = data.iter().sum();
    let shared = Arc::new(data);
    let stored = rustyray::put_arc(Arc::clone(&shared)).unwrap();
    let threads = || {
        std::thread::scope(|s| {
            for t in 0..cpus {
                let shared = &shared;
                s.spawn(move || {
                    for _ in (t..TASKS).step_by(cpus) {
                        assert_eq!(std::hint::black_box(shared.iter().sum::<u64>()), expected);
                    }
                });
            }
        })
    };
    let cases: [(&str, Reader); 3] = [
        ("16 tasks over one 64 MiB object, by &T (extra)", |r| {
            sum_borrowed::remote(r)
        }),
        ("16 tasks over one 64 MiB object, by Arc<T> (extra)", |r| {
            sum_shared::remote(r)
        }),
        ("16 tasks over one 64 MiB object, by T kept (extra)", |r| {
            sum_owned::remote(r)
        }),
    ];
    for (name, submit) in cases {
        let run = || {
            let sums: Vec<ObjectRef<u64>> = (0..TASKS).map(|_| submit(&stored)).collect();
            assert!(rustyray::get_all(&sums)
                .unwrap()
                .iter()
                .all(|s| *s == expected));
        };
        let (ours, raw) = paired(e, TASKS, run, threads);
        out.push(line(
            name,
            "tasks",
            ours,
            Some(("threads over one shared slice", raw)),
        ));
    }
    drop((stored, shared));

    let leaf = e.size(4 << 20, 512 << 10) / 8; // 4 MiB (quick: 512 KiB) per leaf
    let leaves = |i: usize| vec![i as u64; leaf];
    let moved = || {
        let mut level: Vec<ObjectRef<Vec<u64>>> = (0..LEAVES)
            .map(|i| rustyray::put(leaves(i)).unwrap())
            .collect();
        while level.len() > 1 {
            let mut next = Vec::with_capacity(level.len() / 2);
            let mut pairs = level.into_iter();
            while let (Some(a), Some(b)) = (pairs.next(), pairs.next()) {
                next.push(merge::remote(a, b)); // each input's last ref, moved in
            }
            level = next;
        }
        let merged = rustyray::get_arc(&level[0]).unwrap();
        assert_eq!(merged.len(), LEAVES * leaf);
    };
    let inline = || {
        let mut level: Vec<Vec<u64>> = (0..LEAVES).map(leaves).collect();
        while level.len() > 1 {
            let mut next = Vec::with_capacity(level.len() / 2);
            let mut pairs = level.into_iter();
            while let (Some(mut a), Some(b)) = (pairs.next(), pairs.next()) {
                a.extend_from_slice(&b);
                next.push(a);
            }
            level = next;
        }
        assert_eq!(std::hint::black_box(&level[0]).len(), LEAVES * leaf);
    };
    let (ours, raw) = paired(e, 1, moved, inline);
    out.push(line(
        "16-leaf tree merge, inputs moved (extra)",
        "merges",
        ours,
        Some(("the same merge inline", raw)),
    ));
    out
}
