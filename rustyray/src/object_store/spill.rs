//! The disk side of the object store: where objects over the memory budget go.
//!
//! Each runtime spills into a folder of its own, `rustyray-spill-<pid>-<runtime>` under the
//! configured `spill_dir` (default: the system's temporary directory), made on first use and
//! removed at shutdown, so a user-given folder only ever gains and loses that subfolder. An
//! object's file is `<seq>.bin`, its postcard encoding, and is deleted when the object is freed
//! or read back into memory.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Spill files of one runtime, and the bytes they hold.
pub(super) struct Spill {
    base: PathBuf,
    owner: u32,
    dir: OnceLock<PathBuf>,
    limit: Option<u64>,
    bytes: AtomicU64,
    files: AtomicU64,
}

impl Spill {
    pub(super) fn new(base: PathBuf, owner: u32, limit: Option<u64>) -> Spill {
        Spill {
            base,
            owner,
            dir: OnceLock::new(),
            limit,
            bytes: AtomicU64::new(0),
            files: AtomicU64::new(0),
        }
    }

    fn dir(&self) -> std::io::Result<&Path> {
        if let Some(dir) = self.dir.get() {
            return Ok(dir);
        }
        let dir = self.base.join(format!(
            "rustyray-spill-{}-{}",
            std::process::id(),
            self.owner
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(self.dir.get_or_init(|| dir))
    }

    /// Writes an object's encoding; fails with why the disk cannot take it.
    pub(super) fn write(&self, seq: u64, bytes: &[u8]) -> Result<PathBuf, String> {
        let len = bytes.len() as u64;
        let before = self.bytes.fetch_add(len, Ordering::AcqRel);
        if let Some(limit) = self.limit.filter(|limit| before + len > *limit) {
            self.bytes.fetch_sub(len, Ordering::AcqRel);
            return Err(format!(
                "the spill limit is {limit} bytes and {before} are spilled already"
            ));
        }
        let written = self.dir().and_then(|dir| {
            let path = dir.join(format!("{seq}.bin"));
            std::fs::write(&path, bytes).map(|()| path)
        });
        match written {
            Ok(path) => {
                self.files.fetch_add(1, Ordering::AcqRel);
                Ok(path)
            }
            Err(error) => {
                self.bytes.fetch_sub(len, Ordering::AcqRel);
                Err(format!(
                    "writing to {} failed: {error}",
                    self.base.display()
                ))
            }
        }
    }

    /// Reads a spilled object's encoding.
    pub(super) fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    /// Deletes a spill file (its object was freed or read back).
    pub(super) fn remove(&self, path: &Path, len: u64) {
        let _ = std::fs::remove_file(path);
        self.bytes.fetch_sub(len, Ordering::AcqRel);
        self.files.fetch_sub(1, Ordering::AcqRel);
    }

    /// Bytes and files on disk now.
    pub(super) fn usage(&self) -> (u64, u64) {
        (
            self.bytes.load(Ordering::Acquire),
            self.files.load(Ordering::Acquire),
        )
    }

    /// The spill folder, if one was made.
    pub(super) fn path(&self) -> Option<&Path> {
        self.dir.get().map(PathBuf::as_path)
    }

    /// Removes the runtime's spill folder (at shutdown).
    pub(super) fn clear(&self) {
        if let Some(dir) = self.dir.get() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
