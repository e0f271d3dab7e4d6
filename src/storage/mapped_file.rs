//! Writing into a file through a shared memory mapping: a copy into memory
//! instead of a system call per write.
//!
//! Why: the journal appends one record of a few dozen bytes per edit. On this
//! project's 2-core benchmark machine the `pwrite` behind each append was about
//! 4% of the server's CPU under load (`perf`, 100 sessions x 4 clients x 5
//! edits/s). A write into a shared mapping lands in the kernel's page cache
//! exactly as a `pwrite` does: a crash or `kill -9` of pairpad loses nothing
//! once the copy is done, and `fdatasync` on the file puts it on disk (the
//! kernel tracks pages dirtied through a mapping like any others).
//!
//! The price of a mapping is that I/O trouble arrives as a signal (SIGBUS, which
//! ends the process) instead of an error. Writing over blocks a file already
//! has cannot run out of space on a filesystem that overwrites in place, so
//! [`MappedFile::over_written_blocks`] maps only on those (ext2/3/4, XFS, tmpfs),
//! and only files whose every block was written before (the journal zero-fills
//! its file once). On copy-on-write filesystems (btrfs, ZFS, bcachefs, ...)
//! every overwrite needs new blocks, so a full disk would kill the server
//! rather than make storage report "degraded": there, and wherever mapping
//! fails, callers write with `pwrite` as before. The file must not be shortened
//! by anyone while it is mapped; pairpad's data directory is its own.
//!
//! Every page written through a mapping stays in the process's resident memory
//! until it is unmapped, although it is the kernel's page cache: a 16 MiB
//! journal would show as 16 MiB more RSS. [`MappedFile::release_before`] drops
//! the pages a writer has moved past (the kernel keeps them, and writes back the
//! dirty ones as usual).

use memmap2::{Advice, MmapMut, MmapOptions, UncheckedAdvice};
use std::fs::File;

/// The first `len` bytes of a file, mapped for writing.
pub struct MappedFile {
    map: MmapMut,
    /// Bytes from the start whose pages were dropped from this process's
    /// memory since the last [`MappedFile::rewind`] (a multiple of the page size).
    released: usize,
}

impl MappedFile {
    /// Maps the first `len` bytes of `file`, whose blocks must all have been
    /// written already; `None` where a mapping could kill the process on a full
    /// disk (see the module docs) or cannot be made.
    pub fn over_written_blocks(file: &File, len: u64) -> Option<Self> {
        if !overwrites_in_place(file) {
            return None;
        }
        let len = usize::try_from(len).ok()?;
        if len == 0 || file.metadata().ok()?.len() < len as u64 {
            return None;
        }
        // SAFETY: the mapping stays within the file's current size, and the
        // file is pairpad's own (nobody truncates it while it is mapped); the
        // bytes are only ever written through `&mut self`, never read as typed
        // data, so a change by another process could not break Rust's rules.
        let map = unsafe { MmapOptions::new().len(len).map_mut(file) }.ok()?;
        // Appends touch each page once, in order: without read-around, a page
        // the kernel no longer holds is read alone, and cached as one page
        // (a large folio would make every sync flush all of it).
        let _ = map.advise(Advice::Random);
        Some(Self { map, released: 0 })
    }

    /// Copies `bytes` to `offset`; false (nothing written) if they do not fit
    /// inside the mapping.
    pub fn write_at(&mut self, bytes: &[u8], offset: u64) -> bool {
        let Ok(start) = usize::try_from(offset) else {
            return false;
        };
        match start
            .checked_add(bytes.len())
            .and_then(|end| self.map.get_mut(start..end))
        {
            Some(target) => {
                target.copy_from_slice(bytes);
                true
            }
            None => false,
        }
    }
}

impl MappedFile {
    /// Drops the pages wholly before `offset` from this process's memory, for
    /// a writer that has moved past them (see the module docs). Cheap when
    /// there is no whole page to drop.
    pub fn release_before(&mut self, offset: u64) {
        const PAGE: usize = 4096;
        let until = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.map.len())
            / PAGE
            * PAGE;
        if until <= self.released {
            return;
        }
        // SAFETY: the mapping is shared, so dropping its pages loses nothing:
        // later reads or writes see the file's current contents, and dirty
        // pages are still written back. No reference into the range is held.
        let dropped = unsafe {
            self.map.unchecked_advise_range(
                UncheckedAdvice::DontNeed,
                self.released,
                until - self.released,
            )
        };
        if dropped.is_ok() {
            self.released = until;
        }
    }

    /// The writer starts again from the beginning (pages it writes from now
    /// on are resident again until released).
    pub fn rewind(&mut self) {
        self.released = 0;
    }
}

/// Whether `file` lives on a filesystem that overwrites existing blocks in
/// place (so an overwrite never needs free space).
#[cfg(target_os = "linux")]
fn overwrites_in_place(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    let mut stat = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: `stat` is a properly sized buffer the call fills; the descriptor
    // is open for as long as `file` is borrowed.
    if unsafe { libc::fstatfs(file.as_raw_fd(), stat.as_mut_ptr()) } != 0 {
        return false;
    }
    // SAFETY: fstatfs succeeded, so it filled `stat`.
    let kind = unsafe { stat.assume_init() }.f_type;
    [
        libc::EXT4_SUPER_MAGIC, // also ext2 and ext3
        libc::XFS_SUPER_MAGIC,
        libc::TMPFS_MAGIC,
    ]
    .contains(&kind)
}

#[cfg(not(target_os = "linux"))]
fn overwrites_in_place(_file: &File) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{io::Read, os::unix::fs::FileExt};

    fn file_of(len: usize) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("f"))
            .unwrap();
        file.write_all_at(&vec![0; len], 0).unwrap();
        (dir, file)
    }

    #[test]
    fn writes_through_the_mapping_are_read_back_from_the_file() {
        let (dir, file) = file_of(8192);
        let Some(mut mapped) = MappedFile::over_written_blocks(&file, 8192) else {
            eprintln!(
                "skipped: {:?} is not on a filesystem that is mapped",
                dir.path()
            );
            return;
        };
        assert!(mapped.write_at(b"hello", 4094), "across a page boundary");
        drop(mapped);
        let mut contents = Vec::new();
        File::open(dir.path().join("f"))
            .unwrap()
            .read_to_end(&mut contents)
            .unwrap();
        assert_eq!(&contents[4094..4099], b"hello");
        assert_eq!(contents.len(), 8192, "the file keeps its size");
    }

    #[test]
    fn a_write_past_the_mapping_is_refused_and_changes_nothing() {
        let (_dir, file) = file_of(4096);
        let Some(mut mapped) = MappedFile::over_written_blocks(&file, 4096) else {
            return;
        };
        assert!(!mapped.write_at(b"xy", 4095));
        assert!(!mapped.write_at(b"x", u64::MAX));
        let mut byte = [1u8];
        file.read_exact_at(&mut byte, 4095).unwrap();
        assert_eq!(byte, [0]);
    }

    /// This process's resident pages of the file (from /proc/self/smaps).
    fn resident_kib_of(path: &std::path::Path) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let name = path.to_str().unwrap();
        let mut in_mapping = false;
        let mut kib = 0;
        for line in smaps.lines() {
            if line.contains(" /") || line.ends_with(']') || line.split_whitespace().count() == 5 {
                in_mapping = line.ends_with(name);
            } else if in_mapping && line.starts_with("Rss:") {
                kib += line
                    .split_whitespace()
                    .nth(1)
                    .unwrap()
                    .parse::<u64>()
                    .unwrap();
            }
        }
        kib
    }

    #[test]
    fn pages_written_past_leave_the_process_memory_and_keep_their_contents() {
        let (dir, file) = file_of(64 * 4096);
        let Some(mut mapped) = MappedFile::over_written_blocks(&file, 64 * 4096) else {
            return;
        };
        let path = dir.path().join("f");
        let page = vec![7u8; 4096];
        for i in 0..64u64 {
            assert!(mapped.write_at(&page, i * 4096));
        }
        assert!(
            resident_kib_of(&path) >= 60 * 4,
            "written pages are resident"
        );
        mapped.release_before(63 * 4096 + 100);
        assert!(
            resident_kib_of(&path) <= 2 * 4,
            "released pages still resident: {} KiB",
            resident_kib_of(&path)
        );
        let mut contents = vec![0u8; 64 * 4096];
        file.read_exact_at(&mut contents, 0).unwrap();
        assert!(contents.iter().all(|b| *b == 7), "released pages lost data");
    }

    #[test]
    fn a_mapping_longer_than_the_file_is_not_made() {
        let (_dir, file) = file_of(4096);
        assert!(MappedFile::over_written_blocks(&file, 8192).is_none());
        assert!(MappedFile::over_written_blocks(&file, 0).is_none());
    }
}
