//! The disk side of the object store: where objects over the memory budget go.
//!
//! # Layout
//!
//! Each runtime spills into a folder of its own, `rustyray-spill-<pid>-<runtime>-<random>`
//! under the configured `spill_dir` (default: the system's temporary directory). The folder is
//! made on first use, fresh (an existing one of that name is never reused), with mode 0700, and
//! removed at shutdown, so a user-given folder only ever gains and loses that subfolder. An
//! object's file is `<seq>.bin`, created new (never opened through a link or over an existing
//! file) with mode 0600, and deleted when the object is freed or read back into memory.
//!
//! A file holds a header (the magic `RRSPILL2`, the runtime's random nonce, the object's id,
//! the payload's length and its CRC-32, all little-endian), then the payload: the object's
//! postcard encoding.
//!
//! # What is checked, and why
//!
//! The store remembers each spilled object's [`SpillFile`]: its path, length and checksum. A
//! read checks the file's header against the nonce and the object's id, and its length and
//! checksum against what was remembered, so a file cut short, changed, swapped for another
//! object's file (of this or any other runtime) or made by hand is reported as
//! [`ObjectLost`](crate::Error::ObjectLost) for that object alone, never decoded into a wrong
//! value. The checksum catches accidents and swaps, not forgery: only the user running the
//! program (or root) can write into the 0700 folder, and they own the data anyway
//! (docs/security.md).
//!
//! A write that fails (a full disk, say) removes its partial file before reporting, so a
//! failed spill leaves nothing on disk.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use super::ObjectId;

const MAGIC: &[u8; 8] = b"RRSPILL2";
/// Magic, nonce, owner, sequence number, length, checksum.
const HEADER: usize = 8 + 8 + 4 + 8 + 8 + 4;

/// A spilled object's file, as the store remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SpillFile {
    pub(super) path: PathBuf,
    /// The payload's length.
    pub(super) len: u64,
    crc: u32,
}

/// A spill file's payload, checked against its header and what was remembered.
pub(super) struct Payload(Vec<u8>);

impl std::ops::Deref for Payload {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0[HEADER..]
    }
}

/// The header of a spill file holding `payload`, object `id`'s, written by a runtime whose
/// nonce is `nonce`.
fn header(nonce: u64, id: ObjectId, payload: &[u8]) -> [u8; HEADER] {
    let mut header = [0u8; HEADER];
    header[..8].copy_from_slice(MAGIC);
    header[8..16].copy_from_slice(&nonce.to_le_bytes());
    header[16..20].copy_from_slice(&id.owner().to_le_bytes());
    header[20..28].copy_from_slice(&id.seq().to_le_bytes());
    header[28..36].copy_from_slice(&(payload.len() as u64).to_le_bytes());
    header[36..].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
    header
}

/// The little-endian field of `len` bytes at `at` of a header, if the bytes reach that far.
fn field(bytes: &[u8], at: usize, len: usize) -> Option<u64> {
    let mut le = [0u8; 8];
    le[..len].copy_from_slice(bytes.get(at..at + len)?);
    Some(u64::from_le_bytes(le))
}

/// Checks a spill file's bytes against their header, the runtime's `nonce` and what was
/// remembered of object `id`'s file; says what is wrong with them otherwise.
fn check(bytes: Vec<u8>, nonce: u64, id: ObjectId, file: &SpillFile) -> Result<Payload, String> {
    if bytes.len() < HEADER || &bytes[..MAGIC.len()] != MAGIC {
        let shown = bytes.len().min(MAGIC.len());
        return Err(format!(
            "is not a RustyRay spill file (it starts with {:?}, {} bytes in all)",
            String::from_utf8_lossy(&bytes[..shown]),
            bytes.len()
        ));
    }
    // The whole header is there (checked above).
    let read = |at: usize, len: usize| field(&bytes, at, len).unwrap_or(0);
    let (owner, seq) = (read(16, 4) as u32, read(20, 8));
    if read(8, 8) != nonce || owner != id.owner() || seq != id.seq() {
        return Err(format!(
            "holds another object ({owner}:{seq}, written by {}): it was swapped or made by hand",
            if read(8, 8) == nonce {
                "this runtime"
            } else {
                "another runtime, or by hand"
            }
        ));
    }
    let (len, crc) = (read(28, 8), read(36, 4) as u32);
    let held = (bytes.len() - HEADER) as u64;
    if held != len || len != file.len {
        let how = if held < file.len {
            "truncated"
        } else {
            "longer than written"
        };
        return Err(format!(
            "is {how}: it holds {held} of the {} bytes written",
            file.len
        ));
    }
    if crc != file.crc || crc32fast::hash(&bytes[HEADER..]) != crc {
        return Err("is corrupted: its checksum does not match what was written".to_owned());
    }
    Ok(Payload(bytes))
}

/// A whole spill file's bytes, as runtime nonce 0 writes object 1:1 (the fuzz corpus).
#[cfg(test)]
pub(super) fn encoded(payload: &[u8]) -> Vec<u8> {
    [&header(0, ObjectId::new(1, 1), payload)[..], payload].concat()
}

/// Checks any spill file's bytes as the store checks its own, taking the nonce, id, length
/// and checksum it should have from its header (fuzzing the parsing).
#[cfg(test)]
pub(super) fn check_any(bytes: Vec<u8>) -> Result<Payload, String> {
    let read = |at: usize, len: usize| field(&bytes, at, len).unwrap_or(0);
    let (nonce, owner, seq, len, crc) = (
        read(8, 8),
        read(16, 4) as u32,
        read(20, 8),
        read(28, 8),
        read(36, 4) as u32,
    );
    let file = SpillFile {
        path: PathBuf::new(),
        len,
        crc,
    };
    check(bytes, nonce, ObjectId::new(owner, seq), &file)
}

/// A random `u64` from the operating system, for nonces no other process can predict.
pub(crate) fn random_u64() -> u64 {
    // The OS's generator fails only where there is none at all; the time and the process id
    // then still keep nonces apart between processes.
    getrandom::u64().unwrap_or_else(|_| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        (now.as_nanos() as u64) ^ (u64::from(std::process::id()) << 40)
    })
}

/// Spill files of one runtime, and the bytes they hold.
pub(super) struct Spill {
    base: PathBuf,
    owner: u32,
    /// Written into every file's header, so that a file of another runtime (or a hand-made
    /// one) is told apart from this runtime's.
    nonce: u64,
    dir: OnceLock<PathBuf>,
    limit: Option<u64>,
    bytes: AtomicU64,
    files: AtomicU64,
    /// Fails writes after this many bytes (tests of a full disk).
    #[cfg(test)]
    pub(super) fail_after: Option<usize>,
}

impl Spill {
    pub(super) fn new(base: PathBuf, owner: u32, limit: Option<u64>) -> Spill {
        Spill {
            base,
            owner,
            nonce: random_u64(),
            dir: OnceLock::new(),
            limit,
            bytes: AtomicU64::new(0),
            files: AtomicU64::new(0),
            #[cfg(test)]
            fail_after: None,
        }
    }

    fn dir(&self) -> std::io::Result<&Path> {
        if let Some(dir) = self.dir.get() {
            return Ok(dir);
        }
        let dir = make_private_dir(&self.base, self.owner)?;
        if let Err(lost) = self.dir.set(dir) {
            // Another thread made one first: use that one.
            let _ = std::fs::remove_dir(lost);
        }
        Ok(self.dir.get().expect("set above"))
    }

    /// Writes object `id`'s encoding; fails with why the disk cannot take it, leaving no file.
    pub(super) fn write(&self, id: ObjectId, bytes: &[u8]) -> Result<SpillFile, String> {
        let len = bytes.len() as u64;
        let before = self.bytes.fetch_add(len, Ordering::AcqRel);
        if let Some(limit) = self
            .limit
            .filter(|limit| before.saturating_add(len) > *limit)
        {
            self.bytes.fetch_sub(len, Ordering::AcqRel);
            return Err(format!(
                "the spill limit is {limit} bytes and {before} are spilled already"
            ));
        }
        let header = header(self.nonce, id, bytes);
        let written = self.dir().and_then(|dir| {
            let path = dir.join(format!("{}.bin", id.seq()));
            let file = create_private_file(&path)?;
            let result = self.write_all(file, &header, bytes);
            match result {
                Ok(()) => Ok(path),
                Err(error) => {
                    let _ = std::fs::remove_file(&path);
                    Err(error)
                }
            }
        });
        match written {
            Ok(path) => {
                self.files.fetch_add(1, Ordering::AcqRel);
                let crc = u32::from_le_bytes(header[36..].try_into().expect("4 bytes"));
                Ok(SpillFile { path, len, crc })
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

    fn write_all(&self, file: std::fs::File, header: &[u8], bytes: &[u8]) -> std::io::Result<()> {
        #[cfg(test)]
        let file = Limited {
            file,
            left: self.fail_after.unwrap_or(usize::MAX),
        };
        let mut file = std::io::BufWriter::new(file);
        file.write_all(header)?;
        file.write_all(bytes)?;
        file.into_inner().map_err(|e| e.into_error())?;
        Ok(())
    }

    /// Reads object `id`'s encoding back from `file`; says what went wrong otherwise.
    pub(super) fn read(&self, id: ObjectId, file: &SpillFile) -> Result<Payload, String> {
        let bytes = std::fs::read(&file.path).map_err(|e| format!("cannot be read: {e}"))?;
        check(bytes, self.nonce, id, file)
    }

    /// Deletes a spill file (its object was freed or read back).
    pub(super) fn remove(&self, file: &SpillFile) {
        let _ = std::fs::remove_file(&file.path);
        self.bytes.fetch_sub(file.len, Ordering::AcqRel);
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

/// Makes a new folder only this user can enter under `base` (made first if missing), with a
/// name nobody can guess; refuses one that is not what was just made.
fn make_private_dir(base: &Path, owner: u32) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(base)?;
    let mut builder = DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    let mut tries = 0;
    let dir = loop {
        let dir = base.join(format!(
            "rustyray-spill-{}-{owner}-{:016x}",
            std::process::id(),
            random_u64()
        ));
        match builder.create(&dir) {
            Ok(()) => break dir,
            // Somebody made that name (by chance, or to plant it): never use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 8 => tries += 1,
            Err(e) => return Err(e),
        }
    };
    let meta = std::fs::symlink_metadata(&dir)?;
    let refuse = |why: &str| {
        std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("the spill folder {} {why}", dir.display()),
        )
    };
    if !meta.is_dir() {
        return Err(refuse("was replaced by something that is not a folder"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if meta.uid() != crate::os::effective_user() {
            return Err(refuse("belongs to another user"));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(refuse("can be entered by other users"));
        }
    }
    Ok(dir)
}

/// Creates a new file only this user can read, failing if anything (a file, a link) is at
/// `path` already.
fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// A writer that fails with "no space" after `left` bytes, as a full disk does (tests).
#[cfg(test)]
struct Limited {
    file: std::fs::File,
    left: usize,
}

#[cfg(test)]
impl Write for Limited {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "No space left on device (simulated)",
            ));
        }
        let n = buf.len().min(self.left);
        let n = self.file.write(&buf[..n])?;
        self.left -= n;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(test: &str) -> PathBuf {
        std::env::temp_dir().join(format!("rustyray-spill-unit-{test}-{}", std::process::id()))
    }

    #[test]
    fn a_failed_write_leaves_no_file_and_counts_nothing() {
        let base = base("full");
        let mut spill = Spill::new(base.clone(), 1, None);
        spill.fail_after = Some(100);
        let id = ObjectId::new(1, 5);
        let error = spill.write(id, &[7u8; 4096]).unwrap_err();
        assert!(error.contains("No space left"), "{error}");
        let dir = spill.path().expect("the folder was made");
        assert_eq!(
            std::fs::read_dir(dir).unwrap().count(),
            0,
            "partial file removed"
        );
        assert_eq!(spill.usage(), (0, 0));
        spill.fail_after = None;
        let file = spill.write(id, &[7u8; 4096]).unwrap();
        assert_eq!(&*spill.read(id, &file).unwrap(), &[7u8; 4096][..]);
        spill.clear();
        let _ = std::fs::remove_dir_all(base);
    }

    #[test]
    fn folder_and_files_are_private_and_fresh() {
        use std::os::unix::fs::PermissionsExt;
        let base = base("modes");
        let spill = Spill::new(base.clone(), 3, None);
        let file = spill.write(ObjectId::new(3, 1), b"x").unwrap();
        let dir = spill.path().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir), 0o700);
        assert_eq!(mode(&file.path), 0o600);
        // Another runtime of the same process and number gets another folder.
        let other = Spill::new(base.clone(), 3, None);
        other.write(ObjectId::new(3, 1), b"y").unwrap();
        assert_ne!(other.path().unwrap(), dir);
        spill.clear();
        other.clear();
        let _ = std::fs::remove_dir_all(base);
    }

    #[test]
    fn a_file_of_another_object_or_runtime_is_refused() {
        let base = base("swap");
        let spill = Spill::new(base.clone(), 1, None);
        let (a, b) = (ObjectId::new(1, 1), ObjectId::new(1, 2));
        let fa = spill.write(a, &[1u8; 64]).unwrap();
        let fb = spill.write(b, &[2u8; 64]).unwrap();
        std::fs::copy(&fb.path, &fa.path).unwrap();
        let error = spill.read(a, &fa).err().unwrap();
        assert!(error.contains("holds another object (1:2"), "{error}");

        // A file of the same object and length, written by another runtime.
        let other = Spill::new(base.clone(), 1, None);
        let fo = other.write(a, &[3u8; 64]).unwrap();
        std::fs::copy(&fo.path, &fa.path).unwrap();
        let error = spill.read(a, &fa).err().unwrap();
        assert!(error.contains("another runtime"), "{error}");
        spill.clear();
        other.clear();
        let _ = std::fs::remove_dir_all(base);
    }

    #[test]
    fn a_file_with_a_valid_header_but_other_content_is_refused() {
        let base = base("crafted");
        let spill = Spill::new(base.clone(), 1, None);
        let id = ObjectId::new(1, 1);
        let file = spill.write(id, &[1u8; 64]).unwrap();
        // Right nonce, id, length and a checksum matching its own payload: still not ours.
        let crafted = [&header(spill.nonce, id, &[9u8; 64])[..], &[9u8; 64]].concat();
        std::fs::write(&file.path, crafted).unwrap();
        let error = spill.read(id, &file).err().unwrap();
        assert!(error.contains("is corrupted"), "{error}");
        spill.clear();
        let _ = std::fs::remove_dir_all(base);
    }

    #[test]
    fn a_planted_link_is_never_followed() {
        use std::os::unix::fs::symlink;
        let base = base("link");
        let spill = Spill::new(base.clone(), 1, None);
        spill.write(ObjectId::new(1, 1), b"first").unwrap();
        let dir = spill.path().unwrap().to_owned();
        let victim = base.join("victim.txt");
        std::fs::write(&victim, b"precious").unwrap();
        symlink(&victim, dir.join("2.bin")).unwrap();
        assert!(spill.write(ObjectId::new(1, 2), b"overwrite?").is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        spill.clear();
        let _ = std::fs::remove_dir_all(base);
    }
}
