//! The Unix side of `platform` (Linux, macOS and the other Unix systems): mode bits,
//! the executable bit, process groups and `kill`, `/proc`, and errno values by name
//! (they differ between Linux and macOS).

use std::ffi::OsStr;
use std::fs::{DirBuilder, File, Metadata, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rustix::io::Errno;

/// This boot's identity, where the kernel gives one (Linux's `boot_id`, a random UUID
/// drawn at each boot): what is remembered about the machine's network (no instance
/// metadata service) holds for one boot only. `None` elsewhere (macOS).
pub fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|id| id.trim().to_string())
        .filter(|id| !id.is_empty() && id.len() <= 64)
}

/// Directories created for the helper's files: 0700 (then `private_dir` checks them).
pub fn private_dirs(builder: &mut DirBuilder) -> &mut DirBuilder {
    builder.mode(0o700)
}

/// New files holding secrets: created 0600, never chmod-ed after the fact.
pub fn private_file(options: &mut OpenOptions) -> &mut OpenOptions {
    options.mode(0o600)
}

/// Opening does not wait for a writer (a FIFO), so a read can check the handle's file
/// type before it reads anything; regular files read as usual.
pub fn no_block_on_open(options: &mut OpenOptions) -> &mut OpenOptions {
    options.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
}

/// Give `file` the permission bits `mode` (a client config keeps its old mode).
pub fn set_mode(file: &File, mode: u32) -> std::io::Result<()> {
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}

/// A file's permission bits.
pub fn mode(meta: &Metadata) -> u32 {
    meta.permissions().mode() & 0o7777
}

/// The first file named `program` in a directory of `path` that someone may execute.
/// `_pathext` is Windows' list of program suffixes, unused here.
pub fn find_on_path(path: &OsStr, _pathext: Option<&str>, program: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Run the child in a process group of its own, so that `kill_tree` reaches everything
/// it starts (`az` runs python under a shell).
pub fn own_process_group(command: &mut Command) -> &mut Command {
    command.process_group(0)
}

/// Stop the child's whole process group, without unsafe code: `kill -KILL -- -PGID`.
pub fn kill_tree(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Whether the process `pid` is known to be gone. Without `/proc` (macOS, a chroot)
/// nobody counts as gone, so nothing is removed on a guess.
pub fn process_gone(pid: u32) -> bool {
    Path::new("/proc/self").exists() && !Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether a lock error means the file system has no locks (NFS without lockd, some
/// FUSE file systems) rather than a real failure: ENOSYS, EOPNOTSUPP/ENOTSUP, ENOLCK,
/// by name, as their numbers differ between Linux and macOS.
pub fn locks_unsupported(e: &std::io::Error) -> bool {
    e.raw_os_error().is_some_and(|code| {
        [Errno::NOSYS, Errno::OPNOTSUPP, Errno::NOTSUP, Errno::NOLCK]
            .iter()
            .any(|errno| errno.raw_os_error() == code)
    })
}
