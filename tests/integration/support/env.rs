//! A test's private world and the runner for the built helper: a temp dir with HOME,
//! a bin dir for fake CLIs, cache and XDG dirs and the test CA; every run starts the
//! helper with `env_clear()` plus exactly the variables the test sets, feeds stdin, and
//! returns stdout, stderr and the exit code. A run that outlives 60 s is killed and fails
//! the test.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::tls;

pub const BIN: &str = env!("CARGO_BIN_EXE_docker-credential-acr-entra");

/// The binary the tests run: `BIN`, or `ACR_ENTRA_TEST_BIN` when set — to check that a
/// regression test fails on an older build (`ACR_ENTRA_TEST_BIN=old/binary cargo test`).
pub fn bin() -> String {
    std::env::var("ACR_ENTRA_TEST_BIN").unwrap_or_else(|_| BIN.to_string())
}
pub const NULL_GUID: &str = "00000000-0000-0000-0000-000000000000";
pub const NOT_FOUND: &str = "credentials not found in native keychain";
/// The most a run may take before the test calls it hung (times `time_scale`).
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// How much slower than a native machine this one runs the helper, for the upper bounds
/// that tell a bounded wait from a hang: `ACR_ENTRA_TEST_TIME_SCALE` (a whole number,
/// default 1; the arm64 tests under qemu set it). Lower bounds are never scaled.
pub fn time_scale() -> u32 {
    std::env::var("ACR_ENTRA_TEST_TIME_SCALE")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|&n| n >= 1)
        .unwrap_or(1)
}

/// An upper bound on a wall-clock wait, scaled for this machine.
pub fn scaled(limit: Duration) -> Duration {
    limit * time_scale()
}

pub struct TestEnv {
    pub dir: TempDir,
    pub home: PathBuf,
    pub bin: PathBuf,
    pub cache: PathBuf,
    pub ca_pem: PathBuf,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("acr-entra-it-")
            .tempdir()
            .unwrap();
        let root = dir.path().to_path_buf();
        for sub in [
            "home",
            "bin",
            "cache",
            "xdg-config",
            "xdg-cache",
            "xdg-data",
            "xdg-runtime",
        ] {
            fs::create_dir_all(root.join(sub)).unwrap();
        }
        let ca_pem = root.join("ca.pem");
        fs::write(&ca_pem, &tls::pki().ca_pem).unwrap();
        TestEnv {
            home: root.join("home"),
            bin: root.join("bin"),
            cache: root.join("cache"),
            ca_pem,
            dir,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The shared Entra token files in the cache directory (`entra-<digest>.json`).
    pub fn entra_token_files(&self) -> Vec<PathBuf> {
        fs::read_dir(&self.cache)
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().path())
                    .filter(|p| {
                        let name = p.file_name().unwrap().to_string_lossy();
                        name.starts_with("entra-") && name.ends_with(".json")
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Remove the shared Entra tokens, as if they had expired: the next mint asks its
    /// identity's token service again.
    pub fn forget_entra_tokens(&self) {
        for file in self.entra_token_files() {
            fs::remove_file(file).unwrap();
        }
    }

    /// Write a file in the test dir and return its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, contents).unwrap();
        path
    }

    /// Write `value` as the config file `config.json` in the test dir; returns its path
    /// for `ACR_ENTRA_CONFIG`.
    pub fn config(&self, value: &serde_json::Value) -> String {
        self.write("config.json", value.to_string())
            .display()
            .to_string()
    }

    /// A command with the base environment: HOME, PATH (fake bin first), cache and XDG
    /// dirs, and the test CA as the only trusted root.
    pub fn helper(&self) -> Helper {
        let root = self.dir.path();
        let s = |p: &Path| p.display().to_string();
        Helper {
            wrapper: None,
            program: None,
            args: Vec::new(),
            stdin: Vec::new(),
            cwd: root.to_path_buf(),
            vars: vec![
                ("HOME".into(), s(&self.home)),
                (
                    "PATH".into(),
                    format!("{}:/usr/bin:/bin", self.bin.display()),
                ),
                ("ACR_ENTRA_CACHE_DIR".into(), s(&self.cache)),
                ("XDG_CONFIG_HOME".into(), s(&root.join("xdg-config"))),
                ("XDG_CACHE_HOME".into(), s(&root.join("xdg-cache"))),
                ("XDG_DATA_HOME".into(), s(&root.join("xdg-data"))),
                ("XDG_RUNTIME_DIR".into(), s(&root.join("xdg-runtime"))),
                ("SSL_CERT_FILE".into(), s(&self.ca_pem)),
                // Never let an auto-pick probe the real metadata address from a test:
                // tests that want IMDS point this at their fake.
                (
                    "AZURE_POD_IDENTITY_AUTHORITY_HOST".into(),
                    format!("http://127.0.0.1:{}", super::http::dead_port()),
                ),
            ],
        }
    }

    /// `helper()` running `get` with `stdin`.
    pub fn get(&self, stdin: &str) -> Helper {
        self.helper().arg("get").stdin(stdin)
    }
}

pub struct Helper {
    /// A program (and its arguments) that runs the helper: `PROGRAM ARGS… BIN ARGS…`.
    wrapper: Option<Vec<String>>,
    /// Another copy of the helper binary to run (one another uid can reach).
    program: Option<String>,
    args: Vec<String>,
    stdin: Vec<u8>,
    cwd: PathBuf,
    vars: Vec<(String, String)>,
}

impl Helper {
    /// Run the helper through `command` (e.g. `unshare …`), which gets the helper's path
    /// and arguments appended and must exec them.
    pub fn wrapped(mut self, command: &[&str]) -> Helper {
        self.wrapper = Some(command.iter().map(|s| s.to_string()).collect());
        self
    }

    /// Run this copy of the binary instead of the build's.
    pub fn binary(mut self, path: &str) -> Helper {
        self.program = Some(path.to_string());
        self
    }

    /// Run in `dir` instead of the test's root directory.
    pub fn cwd(mut self, dir: &Path) -> Helper {
        self.cwd = dir.to_path_buf();
        self
    }

    pub fn args(mut self, args: &[&str]) -> Helper {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn arg(mut self, arg: &str) -> Helper {
        self.args.push(arg.to_string());
        self
    }

    pub fn stdin(mut self, stdin: impl AsRef<[u8]>) -> Helper {
        self.stdin = stdin.as_ref().to_vec();
        self
    }

    /// Set a variable (replacing an earlier value).
    pub fn env(mut self, name: &str, value: impl AsRef<str>) -> Helper {
        self.vars.retain(|(k, _)| k != name);
        self.vars
            .push((name.to_string(), value.as_ref().to_string()));
        self
    }

    pub fn env_remove(mut self, name: &str) -> Helper {
        self.vars.retain(|(k, _)| k != name);
        self
    }

    /// Every proxy variable (`HTTP_PROXY`, `http_proxy`, `HTTPS_PROXY`, `ALL_PROXY`) set to
    /// `proxy`.
    pub fn through(self, proxy: &super::hostile::CatchAllProxy) -> Helper {
        let url = proxy.url();
        self.env("HTTP_PROXY", &url)
            .env("http_proxy", &url)
            .env("HTTPS_PROXY", &url)
            .env("ALL_PROXY", &url)
    }

    /// Add a `host:port:addr:port` rule to `ACR_ENTRA_CONNECT_TO`.
    pub fn connect_to(self, rule: &str) -> Helper {
        let current = self
            .vars
            .iter()
            .find(|(k, _)| k == "ACR_ENTRA_CONNECT_TO")
            .map(|(_, v)| v.clone());
        let value = match current {
            Some(v) => format!("{v},{rule}"),
            None => rule.to_string(),
        };
        self.env("ACR_ENTRA_CONNECT_TO", value)
    }

    /// `ACR_ENTRA_CREDENTIAL=client-certificate` with its variables and the fake authority;
    /// `password` for a PFX or an encrypted key.
    pub fn client_certificate(
        self,
        authority: &str,
        client_id: &str,
        tenant: &str,
        path: &Path,
        password: Option<&str>,
    ) -> Helper {
        let h = self
            .env("ACR_ENTRA_CREDENTIAL", "client-certificate")
            .env("AZURE_AUTHORITY_HOST", authority)
            .env("AZURE_CLIENT_ID", client_id)
            .env("AZURE_TENANT_ID", tenant)
            .env("AZURE_CLIENT_CERTIFICATE_PATH", path.display().to_string());
        match password {
            Some(p) => h.env("AZURE_CLIENT_CERTIFICATE_PASSWORD", p),
            None => h,
        }
    }

    /// client-secret variables plus the fake authority.
    pub fn client_secret(
        self,
        authority: &str,
        client_id: &str,
        secret: &str,
        tenant: &str,
    ) -> Helper {
        self.env("AZURE_AUTHORITY_HOST", authority)
            .env("AZURE_CLIENT_ID", client_id)
            .env("AZURE_CLIENT_SECRET", secret)
            .env("AZURE_TENANT_ID", tenant)
    }

    pub fn run(self) -> Output {
        let program = self.program.clone().unwrap_or_else(bin);
        let mut cmd = match &self.wrapper {
            Some(w) => {
                let mut cmd = Command::new(&w[0]);
                cmd.args(&w[1..]).arg(&program);
                cmd
            }
            None => Command::new(&program),
        };
        cmd.args(&self.args)
            .env_clear()
            .envs(self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(&self.cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let start = Instant::now();
        let mut child = cmd.spawn().expect("spawn the helper binary");
        let mut stdin = child.stdin.take().unwrap();
        let input = self.stdin.clone();
        // A helper that exits without reading stdin must not fail the test.
        let writer = thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let (out_tx, out_rx) = mpsc::channel();
        let (err_tx, err_rx) = mpsc::channel();
        let mut out_pipe = child.stdout.take().unwrap();
        let mut err_pipe = child.stderr.take().unwrap();
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = out_pipe.read_to_end(&mut buf);
            let _ = out_tx.send(buf);
        });
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = err_pipe.read_to_end(&mut buf);
            let _ = err_tx.send(buf);
        });
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if start.elapsed() > scaled(RUN_LIMIT) {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            thread::sleep(Duration::from_millis(5));
        };
        let elapsed = start.elapsed();
        let _ = writer.join();
        // A grandchild that kept a pipe open must not hang the test either.
        let stdout = out_rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_default();
        let stderr = err_rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_default();
        let output = Output {
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            code: status.and_then(|s| s.code()),
            elapsed,
        };
        assert!(
            status.is_some(),
            "helper `{}` still running after {:?}; killed. {output:?}",
            self.args.join(" "),
            scaled(RUN_LIMIT)
        );
        output
    }
}

#[derive(Debug)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub code: Option<i32>,
    pub elapsed: Duration,
}

/// The exact `get` answer.
pub fn answer_json(server_url: &str, secret: &str) -> String {
    format!(
        r#"{{"ServerURL":{},"Username":"{NULL_GUID}","Secret":{}}}"#,
        serde_json::to_string(server_url).unwrap(),
        serde_json::to_string(secret).unwrap()
    )
}

impl Output {
    /// stdout as exactly one line: `X` or `X\n`, nothing else.
    pub fn stdout_line(&self) -> &str {
        let line = self.stdout.strip_suffix('\n').unwrap_or(&self.stdout);
        assert!(
            !line.contains('\n') && !line.contains('\r'),
            "stdout is not one line: {self:?}"
        );
        line
    }

    /// Exit 0, stdout exactly the answer, stderr empty.
    pub fn assert_answer(&self, server_url: &str, secret: &str) {
        assert_eq!(self.code, Some(0), "expected success: {self:?}");
        assert_eq!(
            self.stdout_line(),
            answer_json(server_url, secret),
            "{self:?}"
        );
        assert_eq!(
            self.stderr, "",
            "stderr must be empty without ACR_ENTRA_LOG: {self:?}"
        );
    }

    /// Exit 0, stdout exactly an answer with this username, stderr empty.
    pub fn assert_answer_as(&self, server_url: &str, username: &str, secret: &str) {
        let expected = format!(
            r#"{{"ServerURL":{},"Username":{},"Secret":{}}}"#,
            serde_json::to_string(server_url).unwrap(),
            serde_json::to_string(username).unwrap(),
            serde_json::to_string(secret).unwrap()
        );
        assert_eq!(self.code, Some(0), "expected success: {self:?}");
        assert_eq!(self.stdout_line(), expected, "{self:?}");
        assert_eq!(self.stderr, "", "{self:?}");
    }

    /// `stderr` is exactly one warning line containing `warning` (one that is printed
    /// whatever `ACR_ENTRA_LOG` says).
    pub fn assert_warned(&self, warning: &str) {
        assert!(
            self.stderr.starts_with("acr-entra warn: ")
                && self.stderr.contains(warning)
                && self.stderr.lines().count() == 1,
            "expected one warning line with `{warning}`: {self:?}"
        );
    }

    /// Exit 1, stdout exactly the not-found text, stderr empty.
    pub fn assert_not_found(&self) {
        assert_eq!(self.code, Some(1), "expected exit 1: {self:?}");
        assert_eq!(self.stdout_line(), NOT_FOUND, "{self:?}");
        assert_eq!(self.stderr, "", "{self:?}");
    }

    /// Exit 1 with one non-empty line on stdout that is a real error (not the
    /// not-found text); returns the line.
    pub fn assert_loud_error(&self) -> &str {
        assert_eq!(self.code, Some(1), "expected exit 1: {self:?}");
        let line = self.stdout_line();
        assert!(!line.trim().is_empty(), "empty error line: {self:?}");
        assert_ne!(
            line, NOT_FOUND,
            "a real failure must not look like not-found: {self:?}"
        );
        assert!(
            !line.starts_with('{'),
            "an error must not look like an answer: {self:?}"
        );
        line
    }

    /// A subcommand's failure (`token`, `configure`, `doctor`, `kubelet`): exit 1,
    /// nothing on stdout (where a password or a kubelet response would go), one line on
    /// stderr; returns the line.
    pub fn subcommand_error(&self) -> &str {
        assert_eq!(self.code, Some(1), "expected exit 1: {self:?}");
        assert_eq!(self.stdout, "", "stdout holds only results: {self:?}");
        let line = self.stderr.strip_suffix('\n').unwrap_or(&self.stderr);
        assert!(
            !line.is_empty() && !line.contains('\n'),
            "stderr is not one line: {self:?}"
        );
        line
    }

    /// Ended in well under `limit`.
    pub fn assert_within(&self, limit: Duration) {
        let limit = scaled(limit);
        assert!(
            self.elapsed < limit,
            "took {:?}, limit {limit:?}: {self:?}",
            self.elapsed
        );
    }
}
