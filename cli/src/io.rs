//! Files: mapped input, same-file detection, atomic output.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tempfile::NamedTempFile;

/// A read-only view of an input file: memory-mapped, or empty.
pub struct Input {
    map: Option<memmap2::Mmap>,
}

impl Input {
    /// Map `path` read-only.
    pub fn open(path: &Path) -> Result<Input> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let meta = file.metadata().with_context(|| format!("reading {}", path.display()))?;
        if meta.is_dir() {
            bail!("{} is a directory", path.display());
        }
        // Empty files cannot be mapped on every platform; they are simply empty.
        let map = if meta.len() == 0 {
            None
        } else {
            // SAFETY: the map is read-only, and we never create a `&mut` to it. If another process
            // truncates or rewrites the file while we read it, reads may see the new bytes or
            // fault (SIGBUS); that is the documented limit of reading files through a map, the
            // price of bounded memory on 100 GB checkpoints. Every offset we read at is
            // validated against the length at open time.
            #[allow(unsafe_code)]
            let m = unsafe { memmap2::Mmap::map(&file) }.with_context(|| format!("mapping {}", path.display()))?;
            // Every command reads the file front to back: ask for aggressive read-ahead.
            #[cfg(unix)]
            let _ = m.advise(memmap2::Advice::Sequential);
            Some(m)
        };
        Ok(Input { map })
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    /// Tell the kernel we are done with the pages before `offset`, so that they leave this
    /// process's resident set as we stream through a file larger than memory. Best effort; the
    /// bytes stay readable (a later read faults them in again).
    pub fn done_before(&self, offset: usize) {
        #[cfg(unix)]
        if let Some(map) = &self.map {
            let len = offset.min(map.len()) & !0xFFFF; // whole 64 KiB blocks (any page size)
            if len > 0 {
                // SAFETY: MADV_DONTNEED on a read-only shared file mapping only drops our page
                // table entries; the pages are clean copies of the file, so later reads see the
                // same bytes (re-read from the page cache or disk). Nothing here holds a
                // reference across the call that the kernel could invalidate: slices stay
                // valid, they just fault again. (memmap2 calls it unchecked because on private
                // writable maps it would discard changes; ours is neither.)
                #[allow(unsafe_code)]
                let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, 0, len) };
            }
        }
        #[cfg(not(unix))]
        let _ = offset;
    }
}

/// Offset of the end of `part` within `whole` (`part` must be a subslice of `whole`).
pub fn end_within(whole: &[u8], part: &[u8]) -> usize {
    let start = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
    debug_assert!(start + part.len() <= whole.len());
    start + part.len()
}

/// Whether `a` and `b` name the same file (same path after resolving links, or the same inode).
pub fn same_file(a: &Path, b: &Path) -> bool {
    if let (Ok(x), Ok(y)) = (a.canonicalize(), b.canonicalize()) {
        if x == y {
            return true;
        }
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            return x.dev() == y.dev() && x.ino() == y.ino();
        }
    }
    false
}

/// Refuse to write `out` over `input`.
pub fn check_distinct(input: &Path, out: &Path) -> Result<()> {
    if same_file(input, out) {
        bail!("OUT {} is the same file as IN {}: refusing to overwrite the input", out.display(), input.display());
    }
    Ok(())
}

/// An output file written under a temporary name in the destination's directory, renamed over
/// the destination by [`Output::commit`]. Dropped without commit (error, Ctrl-C), it is deleted.
pub struct Output {
    writer: BufWriter<NamedTempFile>,
    dest: PathBuf,
}

impl Output {
    /// Start writing `dest`.
    pub fn create(dest: &Path) -> Result<Output> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let prefix = format!(".{name}.");
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tileans-tmp");
        // Temporary files are private (0600) by default; the output is an ordinary file, so
        // ask for 0666 and let the umask apply, as any file creation would.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let tmp =
            builder.tempfile_in(&dir).with_context(|| format!("creating a temporary file in {}", dir.display()))?;
        Ok(Output { writer: BufWriter::with_capacity(1 << 20, tmp), dest: dest.to_owned() })
    }

    /// Append bytes.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.writer.write_all(bytes).with_context(|| format!("writing {}", self.dest.display()))
    }

    /// Overwrite bytes at `offset` (flushes what is buffered first), then return to the end.
    pub fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        let ctx = || format!("writing {}", self.dest.display());
        self.writer.flush().with_context(ctx)?;
        let f = self.writer.get_mut().as_file_mut();
        f.seek(SeekFrom::Start(offset)).with_context(ctx)?;
        f.write_all(bytes).with_context(ctx)?;
        f.seek(SeekFrom::End(0)).with_context(ctx)?;
        Ok(())
    }

    /// Flush, sync and rename over the destination.
    pub fn commit(self) -> Result<()> {
        let dest = self.dest;
        let tmp = self
            .writer
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", dest.display()))?;
        tmp.as_file().sync_all().with_context(|| format!("syncing {}", dest.display()))?;
        tmp.persist(&dest)
            .map_err(|e| e.error)
            .with_context(|| format!("renaming the output to {}", dest.display()))?;
        Ok(())
    }
}
