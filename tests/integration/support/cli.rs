//! Fake `az` and `azd` shell scripts in a test's own bin directory. They answer
//! `az account get-access-token -o json --scope S [--tenant T]` and `azd auth token
//! --output json --scope S [--tenant-id T]` with Entra-like tokens (the ARM scope gets an
//! ARM-audience token), or hang, fail like a logged-out CLI, or print garbage. Every run
//! appends its argv to a log so tests can assert the scope.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::jwt;

/// The tenant in the fake CLIs' tokens.
pub const CLI_TENANT: &str = "cli-tenant-0000";
pub const CLI_APPID: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
/// What a logged-out `az` says on stderr.
pub const AZ_LOGIN_ERROR: &str = "ERROR: Please run 'az login' to setup account.";
pub const AZD_LOGIN_ERROR: &str = "ERROR: not logged in, run `azd auth login` to login";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Az,
    Azd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CliMode {
    Ok,
    /// `sleep 1000`.
    Hang,
    /// Exit 1 with the not-logged-in message on stderr.
    Fail,
    /// Exit 0 with something that is not JSON.
    Garbage,
}

pub struct FakeCli {
    pub tool: Tool,
    log: PathBuf,
    pidfile: PathBuf,
    /// The token printed for the ACR scope.
    pub acr_token: String,
    /// The token printed for the ARM scope.
    pub arm_token: String,
}

impl FakeCli {
    pub fn install(bin_dir: &Path, tool: Tool, mode: CliMode) -> FakeCli {
        let name = match tool {
            Tool::Az => "az",
            Tool::Azd => "azd",
        };
        let log = bin_dir.join(format!("{name}.argv"));
        let pidfile = bin_dir.join(format!("{name}.pids"));
        let oid = format!("cli-user-oid-{}", jwt::unique());
        let acr_token = jwt::entra_access_token(
            "https://containerregistry.azure.net",
            CLI_TENANT,
            &oid,
            CLI_APPID,
        );
        let arm_token =
            jwt::entra_access_token("https://management.azure.com/", CLI_TENANT, &oid, CLI_APPID);
        let answer = match tool {
            Tool::Az => format!(
                r#"printf '%s\n' "{{\"accessToken\":\"$token\",\"expiresOn\":\"2030-01-01 00:00:00.000000\",\"expires_on\":1893456000,\"subscription\":\"00000000-1111-2222-3333-444444444444\",\"tenant\":\"{CLI_TENANT}\",\"tokenType\":\"Bearer\"}}""#
            ),
            Tool::Azd => {
                r#"printf '%s\n' "{\"token\":\"$token\",\"expiresOn\":\"2030-01-01T00:00:00Z\"}""#
                    .to_string()
            }
        };
        let login_error = match tool {
            Tool::Az => AZ_LOGIN_ERROR,
            Tool::Azd => AZD_LOGIN_ERROR,
        };
        let body = match mode {
            CliMode::Ok => format!(
                r#"case "$scope" in
  https://management.*) token='{arm_token}' ;;
  *) token='{acr_token}' ;;
esac
# Real CLIs chatter on stderr; the helper must never pass it on.
echo "WARNING: this fake {name} is chatty on stderr" >&2
{answer}
exit 0"#
            ),
            CliMode::Hang => format!("echo $$ >> '{}'\nexec sleep 1000", pidfile.display()),
            CliMode::Fail => format!("echo \"{login_error}\" >&2\nexit 1"),
            CliMode::Garbage => "echo 'WARNING: this is not { json'\nexit 0".to_string(),
        };
        let script = format!(
            r#"#!/bin/sh
{{ for a in "$@"; do printf '%s\n' "$a"; done; printf '%s\n' '--end--'; }} >> '{log}'
scope=""
while [ $# -gt 0 ]; do
  case "$1" in
    --scope) scope="$2"; shift ;;
  esac
  shift
done
{body}
"#,
            log = log.display()
        );
        let path = bin_dir.join(name);
        fs::write(&path, script).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        FakeCli {
            tool,
            log,
            pidfile,
            acr_token,
            arm_token,
        }
    }

    /// Every run's argv, in order.
    pub fn invocations(&self) -> Vec<Vec<String>> {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let mut out = Vec::new();
        let mut current = Vec::new();
        for line in text.lines() {
            if line == "--end--" {
                out.push(std::mem::take(&mut current));
            } else {
                current.push(line.to_string());
            }
        }
        out
    }

    /// The `--scope` of each run.
    pub fn scopes(&self) -> Vec<String> {
        self.invocations()
            .iter()
            .filter_map(|argv| {
                let i = argv.iter().position(|a| a == "--scope")?;
                argv.get(i + 1).cloned()
            })
            .collect()
    }
}

impl Drop for FakeCli {
    /// End the `sleep 1000` of a hanging fake if the helper left it behind (only that
    /// pid, and only while it still is our sleep).
    fn drop(&mut self) {
        let Ok(pids) = fs::read_to_string(&self.pidfile) else {
            return;
        };
        for pid in pids.lines().map(str::trim).filter(|p| !p.is_empty()) {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains("sleep\u{0}1000") {
                let _ = std::process::Command::new("kill").arg(pid).status();
            }
        }
    }
}
