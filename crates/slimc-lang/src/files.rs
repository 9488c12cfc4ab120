//! The files slimc reads and writes, bounded and safe for what is already on disk.
//!
//! Reading: a source is a regular file (or a pipe) of at most [`MAX_SOURCE_BYTES`], so
//! that `slimc check /dev/zero` or a mistyped path to a data set is one message, not a read
//! that runs until memory is gone.
//!
//! Writing ([`write_output`]): every output goes to a temporary file of its own (unique per
//! process and call, created exclusively, removed on any failure) in the target's
//! directory and is renamed over the target, so a reader never sees half a file and two
//! writers never share a temporary. A symbolic link is written through (the link stays);
//! a target that is not a regular file (`/dev/stdout`, a pipe) is written directly. An
//! existing file of another kind (a checkpoint's metadata, a search state, a Pareto file,
//! a `.slim` source, weights) is never replaced by an output of a different kind.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The largest source file read, in bytes (4 MiB). The largest zoo file is under 4 KiB;
/// a generated network of a thousand blocks is still far below this.
pub const MAX_SOURCE_BYTES: u64 = 4 << 20;

/// Why a source file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot read {}: it is a directory", path.display())]
    Directory { path: PathBuf },
    #[error("cannot read {}: not a regular file (a device or a socket)", path.display())]
    NotAFile { path: PathBuf },
    #[error("cannot read {}: larger than {} bytes, the limit for a source file", path.display(), MAX_SOURCE_BYTES)]
    TooLarge { path: PathBuf },
}

/// The bytes of the source file at `path` (symbolic links followed): a regular file or a
/// pipe (`<(…)`), never more than [`MAX_SOURCE_BYTES`].
pub fn read_source(path: &Path) -> Result<Vec<u8>, SourceError> {
    let io = |source| SourceError::Io { path: path.to_path_buf(), source };
    let meta = std::fs::metadata(path).map_err(io)?;
    let kind = meta.file_type();
    if kind.is_dir() {
        return Err(SourceError::Directory { path: path.to_path_buf() });
    }
    if !kind.is_file() && !is_fifo(&kind) {
        return Err(SourceError::NotAFile { path: path.to_path_buf() });
    }
    if meta.len() > MAX_SOURCE_BYTES {
        return Err(SourceError::TooLarge { path: path.to_path_buf() });
    }
    let mut bytes = Vec::new();
    let file = std::fs::File::open(path).map_err(io)?;
    file.take(MAX_SOURCE_BYTES + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > MAX_SOURCE_BYTES {
        return Err(SourceError::TooLarge { path: path.to_path_buf() });
    }
    Ok(bytes)
}

#[cfg(unix)]
fn is_fifo(kind: &std::fs::FileType) -> bool {
    std::os::unix::fs::FileTypeExt::is_fifo(kind)
}

#[cfg(not(unix))]
fn is_fifo(_: &std::fs::FileType) -> bool {
    false
}

/// The most of a JSON file read to tell its kind (a search or a front of a large pool is a
/// few MiB).
const MAX_JSON_BYTES: u64 = 256 << 20;

/// What an output file holds; an existing file of one kind is never replaced by another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A checkpoint's or an exported model's `meta.json`.
    Metadata,
    /// A `slimc search` state (`search.json`).
    SearchState,
    /// A `slimc eval --pareto` front (`pareto.json`).
    Pareto,
    /// A `.slim` source file.
    Source,
    /// Weights: a Burn record, safetensors or ONNX.
    Weights,
    /// A run's `metrics.jsonl`.
    Metrics,
    /// Rust source (`slimc emit`).
    RustSource,
    /// Python source (`slimc emit --target pytorch`).
    PythonSource,
    /// A plot (SVG or PNG).
    Plot,
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FileKind::Metadata => "a checkpoint's metadata",
            FileKind::SearchState => "a search state",
            FileKind::Pareto => "a Pareto file",
            FileKind::Source => "a .slim source file",
            FileKind::Weights => "model weights",
            FileKind::Metrics => "a run's metrics",
            FileKind::RustSource => "Rust source",
            FileKind::PythonSource => "Python source",
            FileKind::Plot => "a plot",
        })
    }
}

impl FileKind {
    /// The kind of the existing file at `path`, from its name and (for JSON) its first
    /// bytes; `None` for anything slimc does not write (which an output may replace).
    pub fn of_existing(path: &Path) -> Option<FileKind> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let by_name = match ext {
            "slim" => Some(FileKind::Source),
            "mpk" | "onnx" | "safetensors" => Some(FileKind::Weights),
            "jsonl" => Some(FileKind::Metrics),
            "rs" => Some(FileKind::RustSource),
            "py" => Some(FileKind::PythonSource),
            "svg" | "png" => Some(FileKind::Plot),
            _ => None,
        };
        if by_name.is_some() || ext != "json" {
            return by_name;
        }
        // The top-level keys of the JSON document (values skipped unread): a checkpoint's
        // metadata has `slimc_version`, a front `front` and `area`, a search `found`,
        // `path` and `complete`. A file that does not parse is nothing slimc wrote.
        let file = std::fs::File::open(path).ok()?;
        let reader = std::io::BufReader::new(file.take(MAX_JSON_BYTES));
        let keys: std::collections::BTreeMap<String, serde::de::IgnoredAny> = serde_json::from_reader(reader).ok()?;
        let has = |key: &str| keys.contains_key(key);
        if has("slimc_version") {
            Some(FileKind::Metadata)
        } else if has("front") && has("area") {
            Some(FileKind::Pareto)
        } else if has("found") && has("path") && has("complete") {
            Some(FileKind::SearchState)
        } else {
            None
        }
    }
}

/// Why an output could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot write {}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{} is {existing}; not replacing it with {writing} (remove it first, or choose another name)", path.display())]
    OtherKind { path: PathBuf, existing: FileKind, writing: FileKind },
    #[error("cannot write {}: it is a directory", path.display())]
    Directory { path: PathBuf },
}

/// Writes `bytes` of `kind` to `path` as the module doc says: atomically through a
/// temporary of its own, through symbolic links, and never over a file of another kind.
pub fn write_output(path: &Path, bytes: &[u8], kind: FileKind) -> Result<(), WriteError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| WriteError::Io { path: p, source }
    };
    // Follow a symbolic link to what it names, so that the link itself stays.
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path).map_err(io(path))?,
        _ => path.to_path_buf(),
    };
    match std::fs::metadata(&target) {
        Ok(m) if m.is_dir() => return Err(WriteError::Directory { path: path.to_path_buf() }),
        // A device or a pipe (`-o /dev/stdout`): written directly, there is nothing to replace.
        Ok(m) if !m.is_file() => {
            let mut out = std::fs::OpenOptions::new().write(true).open(&target).map_err(io(path))?;
            return out.write_all(bytes).and_then(|()| out.flush()).map_err(io(path));
        }
        Ok(_) => {
            if let Some(existing) = FileKind::of_existing(&target).filter(|&k| k != kind) {
                return Err(WriteError::OtherKind { path: path.to_path_buf(), existing, writing: kind });
            }
        }
        Err(_) => {}
    }
    replace_atomically(&target, bytes).map_err(io(path))
}

/// Replaces `target` with `bytes` atomically: a temporary file of its own beside it
/// ([`temporary_beside`]), synced, then renamed over the target; the temporary is removed
/// on any failure. [`write_output`] and the runtime's writes of a run's own files share it.
pub fn replace_atomically(target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = temporary_beside(target)?;
    let written = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, target)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Creates an empty, new file beside `target` with a name no other call uses:
/// `.NAME.PID.N.tmp` (hidden, process id, a per-process counter), created exclusively.
pub fn temporary_beside(target: &Path) -> std::io::Result<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target.file_name().map_or("output".into(), |n| n.to_string_lossy().into_owned());
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(_) => return Ok(tmp),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_directories_and_large_files_are_refused() {
        #[cfg(unix)]
        assert!(matches!(read_source(Path::new("/dev/zero")), Err(SourceError::NotAFile { .. })));
        assert!(matches!(read_source(Path::new(".")), Err(SourceError::Directory { .. })));
        assert!(matches!(read_source(Path::new("no/such/file.slim")), Err(SourceError::Io { .. })));
        let dir = std::env::temp_dir().join(format!("slimc-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let big = dir.join("big.slim");
        std::fs::write(&big, vec![b' '; MAX_SOURCE_BYTES as usize + 1]).unwrap();
        assert!(matches!(read_source(&big), Err(SourceError::TooLarge { .. })));
        let ok = dir.join("ok.slim");
        std::fs::write(&ok, b"network n() {}").unwrap();
        assert_eq!(read_source(&ok).unwrap(), b"network n() {}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("slimc-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn outputs_never_replace_another_kind() {
        let dir = scratch("kinds");
        let meta = dir.join("meta.json");
        let stored = br#"{"slimc_version": "0.1.0", "source": "network n() {}"}"#;
        std::fs::write(&meta, stored).unwrap();
        let e = write_output(&meta, b"{\"front\": []}", FileKind::Pareto).unwrap_err();
        assert!(matches!(e, WriteError::OtherKind { existing: FileKind::Metadata, .. }), "{e}");
        assert_eq!(std::fs::read(&meta).unwrap(), stored);
        let source = dir.join("net.slim");
        std::fs::write(&source, b"network n() {}").unwrap();
        assert!(write_output(&source, b"fn main() {}", FileKind::RustSource).is_err());
        assert_eq!(std::fs::read(&source).unwrap(), b"network n() {}");
        // The same kind is replaced, and nothing is left beside it.
        let pareto = dir.join("pareto.json");
        write_output(&pareto, br#"{"front": [], "area": 0}"#, FileKind::Pareto).unwrap();
        write_output(&pareto, br#"{"front": [1], "area": 1}"#, FileKind::Pareto).unwrap();
        assert_eq!(std::fs::read(&pareto).unwrap(), br#"{"front": [1], "area": 1}"#);
        assert_eq!(listing(&dir), ["meta.json", "net.slim", "pareto.json"]);
        assert!(matches!(write_output(&dir, b"x", FileKind::Plot), Err(WriteError::Directory { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn links_are_written_through_and_temporaries_are_unique() {
        let dir = scratch("links");
        let real = dir.join("real.rs");
        std::fs::write(&real, b"old").unwrap();
        let link = dir.join("link.rs");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_output(&link, b"new", FileKind::RustSource).unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(&real).unwrap(), b"new");
        // Two outputs of one stem in one directory never share a temporary.
        let (a, b) = (temporary_beside(&dir.join("m.onnx")).unwrap(), temporary_beside(&dir.join("m.onnx")).unwrap());
        assert_ne!(a, b);
        std::fs::remove_file(a).unwrap();
        std::fs::remove_file(b).unwrap();
        // A failed write leaves nothing behind.
        let missing = dir.join("no-such-dir").join("x.rs");
        assert!(write_output(&missing, b"x", FileKind::RustSource).is_err());
        assert_eq!(listing(&dir), ["link.rs", "real.rs"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
