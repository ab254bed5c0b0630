//! The memory limit: spilling to disk, reading back, running out of room.
mod common;

use std::path::PathBuf;

use rustyray::{Config, Error, ObjectRef, Runtime};

const MIB: usize = 1 << 20;

fn spill_base(test: &str) -> PathBuf {
    std::env::temp_dir().join(format!("rustyray-spill-test-{test}-{}", std::process::id()))
}

fn limited(test: &str, memory: usize, disk: Option<u64>) -> Runtime {
    let mut config = Config::default()
        .num_cpus(2)
        .object_store_memory(memory as u64)
        .spill_dir(spill_base(test));
    if let Some(disk) = disk {
        config = config.spill_limit(disk);
    }
    Runtime::new(config).unwrap()
}

fn files_in(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

/// A 16 MiB object marked with `i` at both ends, so mix-ups are caught.
fn block(i: usize) -> Vec<u8> {
    let mut data = vec![i as u8; 16 * MIB];
    data[..8].copy_from_slice(&(i as u64).to_le_bytes());
    data[16 * MIB - 8..].copy_from_slice(&(!i as u64).to_le_bytes());
    data
}

/// Room for `n` blocks (each is 16 MiB plus its length prefix).
fn room(n: usize) -> usize {
    n * 16 * MIB + MIB
}

#[test]
fn twenty_objects_of_16_mib_under_a_64_mib_limit_come_back_intact_and_leave_no_files() {
    let rt = limited("twenty", 64 * MIB, None);
    let _g = rt.enter();
    let refs: Vec<ObjectRef<Vec<u8>>> = (0..20).map(|i| rustyray::put(block(i)).unwrap()).collect();
    let stats = rt.stats();
    assert!(stats.memory_bytes <= 64 * MIB as u64, "{stats:?}");
    assert!(stats.spilled_objects >= 16, "{stats:?}");
    let dir = rt.spill_path().expect("spilled to disk");
    assert_eq!(files_in(&dir) as u64, stats.spilled_objects);
    for (i, r) in refs.iter().enumerate() {
        assert!(
            rustyray::get_arc(r).unwrap().as_slice() == block(i).as_slice(),
            "object {i}"
        );
    }
    assert!(rt.stats().memory_bytes <= 64 * MIB as u64);
    drop(refs);
    assert_eq!(files_in(&dir), 0, "spill files go with their objects");
    assert_eq!(rt.stats().spilled_bytes, 0);
    rt.shutdown();
    assert!(!dir.exists(), "the spill folder goes at shutdown");
    let _ = std::fs::remove_dir_all(spill_base("twenty"));
}

#[test]
fn a_put_beyond_memory_and_disk_is_refused_and_earlier_objects_stay_readable() {
    let rt = limited("full", room(2), Some(room(2) as u64));
    let _g = rt.enter();
    let kept: Vec<_> = (0..4).map(|i| rustyray::put(block(i)).unwrap()).collect();
    match rustyray::put(block(9)) {
        Err(Error::ObjectStoreFull {
            needed,
            limit,
            reason,
            ..
        }) => {
            assert!(needed > 16 * MIB as u64);
            assert_eq!(limit, room(2) as u64);
            assert!(reason.contains("spill limit"), "{reason}");
        }
        other => panic!("{:?}", other.map(|r| r.id())),
    }
    for (i, r) in kept.iter().enumerate() {
        assert!(rustyray::get(r).unwrap() == block(i), "object {i} intact");
    }
    let _ = std::fs::remove_dir_all(spill_base("full"));
}

#[test]
fn a_put_larger_than_the_memory_limit_goes_straight_to_disk() {
    let rt = limited("large", 8 * MIB, None);
    let _g = rt.enter();
    let big = rustyray::put(block(3)).unwrap(); // 16 MiB > 8 MiB
    assert_eq!(rt.stats().spilled_objects, 1);
    assert_eq!(rt.stats().memory_bytes, 0);
    assert!(rustyray::get(&big).unwrap() == block(3));
    let _ = std::fs::remove_dir_all(spill_base("large"));
}

#[test]
fn values_lent_out_by_get_arc_are_never_spilled() {
    let rt = limited("pinned", room(2), Some(room(1) as u64));
    let _g = rt.enter();
    let a = rustyray::put(block(1)).unwrap();
    let b = rustyray::put(block(2)).unwrap();
    let (held_a, held_b) = (
        rustyray::get_arc(&a).unwrap(),
        rustyray::get_arc(&b).unwrap(),
    );
    // Memory is taken by values in use, so the new object goes to disk itself.
    let c = rustyray::put(block(3)).unwrap();
    assert_eq!(rt.stats().spilled_objects, 1);
    match rustyray::put(block(4)) {
        Err(Error::ObjectStoreFull { reason, .. }) => {
            assert!(reason.contains("in use"), "{reason}")
        }
        other => panic!("{:?}", other.map(|r| r.id())),
    }
    assert!(
        *held_a == block(1) && *held_b == block(2),
        "lent-out values untouched"
    );
    drop((held_a, held_b));
    drop(c);
    let d = rustyray::put(block(4)).unwrap(); // now the least recently used one spills
    assert_eq!(rt.stats().spilled_objects, 1);
    assert!(rustyray::get(&d).unwrap() == block(4));
    assert!(rustyray::get(&a).unwrap() == block(1));
    assert!(rustyray::get(&b).unwrap() == block(2));
    let _ = std::fs::remove_dir_all(spill_base("pinned"));
}

#[test]
fn refs_inside_a_spilled_object_keep_their_objects_alive() {
    let rt = limited("nested", room(1), None);
    let _g = rt.enter();
    let inner = rustyray::put("still here".to_string()).unwrap();
    let outer = rustyray::put((block(0), vec![inner])).unwrap(); // 16 MiB plus the ref
    let _pressure = rustyray::put(block(1)).unwrap(); // spills `outer` (and the older `inner`)
    assert!(rt.stats().spilled_objects >= 1);
    let (data, refs) = rustyray::get(&outer).unwrap();
    assert!(data == block(0));
    assert_eq!(rustyray::get(&refs[0]).unwrap(), "still here");
    let _ = std::fs::remove_dir_all(spill_base("nested"));
}

#[rustyray::remote]
fn make(i: usize) -> Vec<u8> {
    block(i)
}

#[rustyray::remote]
fn checksum(data: Vec<u8>) -> u64 {
    data.iter().map(|b| *b as u64).sum()
}

#[test]
fn task_results_over_the_limit_spill_and_still_feed_other_tasks() {
    let rt = limited("tasks", room(2), None);
    let _g = rt.enter();
    let made: Vec<_> = (0..6).map(make::remote).collect();
    let sums: Vec<_> = made.iter().map(checksum::remote).collect();
    let expected: Vec<u64> = (0..6)
        .map(|i| block(i).iter().map(|b| *b as u64).sum())
        .collect();
    assert_eq!(rustyray::get_all(&sums).unwrap(), expected);
    assert!(rt.stats().spilled_objects >= 1);
    let _ = std::fs::remove_dir_all(spill_base("tasks"));
}

/// The spill files of `dir`, oldest object first (files are named `<seq>.bin`).
fn spill_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| Some((p.file_stem()?.to_str()?.parse().ok()?, p)))
        .collect();
    files.sort();
    files.into_iter().map(|(_, p)| p).collect()
}

#[test]
fn a_damaged_spill_file_loses_its_object_only_and_says_which_file() {
    let rt = limited("damaged", room(1), None);
    let _g = rt.enter();
    let refs: Vec<ObjectRef<Vec<u8>>> = (0..6).map(|i| rustyray::put(block(i)).unwrap()).collect();
    let dir = rt.spill_path().expect("spilled");
    let files = spill_files(&dir);
    // Object 0's file cut short, object 1's changed in the middle, object 2's replaced,
    // object 3's swapped for object 2's (same length, valid checksum).
    assert!(files.len() >= 4, "{files:?}");
    std::fs::copy(&files[2], &files[3]).unwrap();
    let bytes = std::fs::read(&files[0]).unwrap();
    std::fs::write(&files[0], &bytes[..bytes.len() / 2]).unwrap();
    let mut bytes = std::fs::read(&files[1]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xFF;
    std::fs::write(&files[1], bytes).unwrap();
    std::fs::write(&files[2], b"not what was spilled").unwrap();

    for (i, expected) in [
        (0, "is truncated"),
        (1, "is corrupted"),
        (2, "is not a RustyRay spill file"),
        (3, "holds another object"),
    ] {
        for _ in 0..2 {
            // Every read fails the same way, naming the object and its file.
            match rustyray::get(&refs[i]) {
                Err(Error::ObjectLost { object, reason }) => {
                    assert_eq!(object, refs[i].id().to_string());
                    assert!(reason.contains(&files[i].display().to_string()), "{reason}");
                    assert!(reason.contains(expected), "{reason}");
                }
                other => panic!("object {i}: {:?}", other.map(|v| v.len())),
            }
        }
    }
    // Nothing else is lost: the last object, and new ones, are intact.
    assert!(rustyray::get(&refs[5]).unwrap() == block(5));
    let again = rustyray::put(block(9)).unwrap();
    assert!(rustyray::get(&again).unwrap() == block(9));
    drop(refs);
    let _ = std::fs::remove_dir_all(spill_base("damaged"));
}

#[test]
fn the_spill_folder_is_private_fresh_and_never_a_planted_one() {
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
    let base = spill_base("private");
    // Another user's trap, as far as a test can set one: a world-writable folder under the
    // old predictable name, full of links to a file of ours.
    let victim = std::env::temp_dir().join(format!("rustyray-victim-{}", std::process::id()));
    std::fs::write(&victim, b"precious").unwrap();
    std::fs::create_dir_all(&base).unwrap();
    let rt = limited("private", room(1), None);
    let planted = base.join(format!("rustyray-spill-{}-{}", std::process::id(), rt.id()));
    std::fs::create_dir_all(&planted).unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o777)).unwrap();
    for seq in 0..64 {
        symlink(&victim, planted.join(format!("{seq}.bin"))).unwrap();
    }
    let _g = rt.enter();
    let refs: Vec<ObjectRef<Vec<u8>>> = (0..3).map(|i| rustyray::put(block(i)).unwrap()).collect();
    let dir = rt.spill_path().expect("spilled");
    assert_ne!(dir, planted, "the planted folder is not used");
    let meta = std::fs::symlink_metadata(&dir).unwrap();
    assert!(meta.is_dir() && !meta.file_type().is_symlink());
    assert_eq!(meta.mode() & 0o777, 0o700, "the folder is the user's alone");
    for file in spill_files(&dir) {
        let meta = std::fs::symlink_metadata(&file).unwrap();
        assert!(meta.is_file(), "{file:?} is a plain file");
        assert_eq!(meta.mode() & 0o777, 0o600, "{file:?} is the user's alone");
    }
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(rustyray::get(&refs[0]).unwrap() == block(0));
    drop(refs);
    drop(_g);
    drop(rt);
    let _ = std::fs::remove_dir_all(&base);
    let _ = std::fs::remove_file(&victim);
}

#[test]
fn a_full_disk_fails_the_put_and_leaves_no_partial_file() {
    // A 24 MiB tmpfs takes one 16 MiB block, not two. Mounting needs root (as CI runs); where
    // it cannot be mounted, the unit test of a simulated write error (object_store/spill.rs)
    // covers the same path.
    let base = spill_base("tmpfs");
    std::fs::create_dir_all(&base).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=24m", "tmpfs"])
        .arg(&base)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("tmpfs cannot be mounted here: the simulated write error covers this");
        let _ = std::fs::remove_dir_all(&base);
        return;
    }
    let rt = Runtime::new(
        Config::default()
            .num_cpus(1)
            .object_store_memory(MIB as u64)
            .spill_dir(&base),
    )
    .unwrap();
    let result = {
        let _g = rt.enter();
        let first = rustyray::put(block(1)).unwrap();
        let second = rustyray::put(block(2));
        let dir = rt.spill_path().expect("spilled");
        assert_eq!(
            files_in(&dir),
            1,
            "only the first object's file; no partial one"
        );
        assert_eq!(rt.stats().spilled_objects, 1);
        assert!(
            rustyray::get(&first).unwrap() == block(1),
            "nothing stored is lost"
        );
        second.map(|r| r.id())
    };
    drop(rt);
    let _ = std::process::Command::new("umount").arg(&base).status();
    let _ = std::fs::remove_dir_all(&base);
    match result {
        Err(Error::ObjectStoreFull { reason, .. }) => {
            assert!(reason.contains("No space left"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}
