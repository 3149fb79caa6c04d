//! Facts about the build for `version`, handed to the crate as compile-time variables:
//! the commit (`ACR_ENTRA_COMMIT` when the builder names it, as `scripts/package.sh`
//! does, else `git rev-parse HEAD` when building from a checkout), the build date
//! (`SOURCE_DATE_EPOCH`, the reproducible-builds convention, only when set: a clock
//! reading would make every build differ) and the target triple. Nothing here makes a
//! build fail: a fact that cannot be had is reported as unknown.

// A build script's inputs are environment variables; the crate's own rule (read the
// environment through `config::Env`) is about the helper at run time.
#![allow(clippy::disallowed_methods)]

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    println!("cargo:rerun-if-env-changed=ACR_ENTRA_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=ACR_ENTRA_BUILD_TARGET={target}");
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .filter(|v| !v.is_empty() && v.len() <= 12 && v.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_default();
    println!("cargo:rustc-env=ACR_ENTRA_BUILD_EPOCH={epoch}");
    let commit = std::env::var("ACR_ENTRA_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(git_commit)
        .filter(|c| c.len() <= 80 && c.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_default();
    println!("cargo:rustc-env=ACR_ENTRA_BUILD_COMMIT={commit}");
}

/// `HEAD`'s commit, and the files whose change means another commit (so the build script
/// runs again after a commit or a checkout, and not on every build).
fn git_commit() -> Option<String> {
    let git = |args: &[&str]| {
        let out = Command::new("git").args(args).output().ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        out.status.success().then(|| text.trim().to_string())
    };
    let commit = git(&["rev-parse", "HEAD"])?;
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name])
            && Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    Some(commit)
}
