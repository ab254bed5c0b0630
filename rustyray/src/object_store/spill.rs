//! The disk side of the object store: where objects over the memory budget go.
//!
//! Each runtime spills into a folder of its own, `rustyray-spill-<pid>-<runtime>` under the
//! configured `spill_dir` (default: the system's temporary directory), made on first use and
//! removed at shutdown, so a user-given folder only ever gains and loses that subfolder. An
//! object's file is `<seq>.bin` and is deleted when the object is freed or read back into
//! memory. It holds a header (the magic `RRSPILL1`, the payload's length as a little-endian
//! `u64`, its CRC-32 as a little-endian `u32`), then the payload: the object's postcard
//! encoding. A file cut short, changed, or replaced on disk is reported as such when the object
//! is read, rather than decoded into a wrong value.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

const MAGIC: &[u8; 8] = b"RRSPILL1";
const HEADER: usize = MAGIC.len() + 8 + 4;

/// A spill file's payload, checked against its header.
pub(super) struct Payload(Vec<u8>);

impl std::ops::Deref for Payload {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0[HEADER..]
    }
}

/// The header of a spill file holding `payload`.
fn header(payload: &[u8]) -> [u8; HEADER] {
    let mut header = [0u8; HEADER];
    header[..8].copy_from_slice(MAGIC);
    header[8..16].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    header[16..].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    header
}

/// A whole spill file's bytes (for tests).
#[cfg(test)]
pub(super) fn encoded(payload: &[u8]) -> Vec<u8> {
    [&header(payload)[..], payload].concat()
}

/// Checks a spill file's bytes against their header; says what is wrong with them otherwise.
pub(super) fn check(bytes: Vec<u8>) -> Result<Payload, String> {
    if bytes.len() < HEADER || &bytes[..MAGIC.len()] != MAGIC {
        let shown = bytes.len().min(MAGIC.len());
        return Err(format!(
            "is not a RustyRay spill file (it starts with {:?}, {} bytes in all)",
            String::from_utf8_lossy(&bytes[..shown]),
            bytes.len()
        ));
    }
    let field = |at: usize, len: usize| {
        let mut le = [0u8; 8];
        le[..len].copy_from_slice(&bytes[at..at + len]);
        u64::from_le_bytes(le)
    };
    let (len, crc) = (field(8, 8), field(16, 4) as u32);
    let held = (bytes.len() - HEADER) as u64;
    if held != len {
        let how = if held < len {
            "truncated"
        } else {
            "longer than written"
        };
        return Err(format!(
            "is {how}: it holds {held} of the {len} bytes written"
        ));
    }
    if crc32fast::hash(&bytes[HEADER..]) != crc {
        return Err("is corrupted: its checksum does not match what was written".to_owned());
    }
    Ok(Payload(bytes))
}

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
            let mut file = std::io::BufWriter::new(std::fs::File::create(&path)?);
            file.write_all(&header(bytes))?;
            file.write_all(bytes)?;
            file.into_inner().map_err(|e| e.into_error())?;
            Ok(path)
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

    /// Reads a spilled object's encoding; says what went wrong otherwise.
    pub(super) fn read(&self, path: &Path) -> Result<Payload, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot be read: {e}"))?;
        check(bytes)
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
