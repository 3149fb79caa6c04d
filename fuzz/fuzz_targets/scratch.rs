//! Shared by the file-reading fuzz targets: where their files live.

/// A directory on tmpfs when there is one: the same file operations (write, rename,
/// fsync, flock), without a disk flush per execution, so runs reach millions.
pub fn scratch_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap()
}
