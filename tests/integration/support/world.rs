//! The most common set-up, ready-made: a test's private world with a fake Entra and a
//! fake ACR named `host`, and a client secret for them, so a test starts with
//! `let w = World::start(HOST);` and `w.get().run()` mints for real through the fakes.
//! Builders cover the variants several tests share: the credential auto-picked, a
//! certificate or a federated token file instead of the secret, the test's own client,
//! further registries, and a registry the helper reaches without `ACR_ENTRA_CONNECT_TO`.

use std::path::{Path, PathBuf};

use super::env::{Helper, TestEnv};
use super::{FakeAcr, FakeEntra};

pub const CLIENT: &str = "aaaaaaaa-0000-4000-8000-000000000001";
pub const SECRET: &str = "world-client-secret";
pub const TENANT: &str = "tenant-world-0001";

/// What the helper signs in with.
enum Credential {
    Secret,
    Certificate {
        path: PathBuf,
        password: Option<String>,
    },
    /// Workload identity: the file holds the assertion Entra is sent.
    Federated {
        path: PathBuf,
    },
}

pub struct World {
    pub env: TestEnv,
    pub entra: FakeEntra,
    pub acr: FakeAcr,
    pub host: String,
    /// Registries besides `acr`, reachable the same way.
    pub others: Vec<FakeAcr>,
    pub client: String,
    pub secret: String,
    pub tenant: String,
    credential: Credential,
    /// Whether `ACR_ENTRA_CREDENTIAL` names the credential or the helper picks it.
    forced: bool,
    /// Whether the registries are reached through `ACR_ENTRA_CONNECT_TO` rules.
    mapped: bool,
}

impl World {
    pub fn start(host: &str) -> World {
        World::around(FakeAcr::start(host))
    }

    /// A registry that calls itself `localhost:PORT`, which needs no connect-to rule.
    pub fn localhost() -> World {
        World::around(FakeAcr::start_localhost()).unmapped()
    }

    /// A plain-http registry that calls itself `127.0.0.1:PORT`, reached directly.
    pub fn plain_loopback() -> World {
        World::around(FakeAcr::start_plain_loopback()).unmapped()
    }

    fn around(acr: FakeAcr) -> World {
        World {
            env: TestEnv::new(),
            entra: FakeEntra::start(),
            host: acr.host(),
            acr,
            others: Vec::new(),
            client: CLIENT.to_string(),
            secret: SECRET.to_string(),
            tenant: TENANT.to_string(),
            credential: Credential::Secret,
            forced: true,
            mapped: true,
        }
    }

    /// Leave `ACR_ENTRA_CREDENTIAL` unset: the helper picks the credential from what the
    /// environment offers.
    pub fn auto(mut self) -> World {
        self.forced = false;
        self
    }

    /// Sign in with this certificate file (PEM or PFX) instead of the client secret.
    pub fn certificate(mut self, path: &Path, password: Option<&str>) -> World {
        self.credential = Credential::Certificate {
            path: path.to_path_buf(),
            password: password.map(str::to_string),
        };
        self
    }

    /// Sign in with workload identity, the assertion read from this token file.
    pub fn federated(mut self, path: &Path) -> World {
        self.credential = Credential::Federated {
            path: path.to_path_buf(),
        };
        self
    }

    /// Sign in as this client, for tests that check what a particular id, secret or
    /// tenant does.
    pub fn with_client(mut self, client: &str, secret: &str, tenant: &str) -> World {
        self.client = client.to_string();
        self.secret = secret.to_string();
        self.tenant = tenant.to_string();
        self
    }

    /// One more fake registry named `host`, reachable as `acr` is.
    pub fn with_registry(mut self, host: &str) -> World {
        self.others.push(FakeAcr::start(host));
        self
    }

    /// No `ACR_ENTRA_CONNECT_TO` rules: the helper dials the registries by their names.
    pub fn unmapped(mut self) -> World {
        self.mapped = false;
        self
    }

    /// The registry named `host`: `acr` or one of `others`.
    pub fn registry(&self, host: &str) -> &FakeAcr {
        std::iter::once(&self.acr)
            .chain(&self.others)
            .find(|acr| acr.host() == host)
            .unwrap_or_else(|| panic!("no fake registry named {host}"))
    }

    /// The helper with the credential (forced unless `auto`) and the registries reachable.
    pub fn helper(&self) -> Helper {
        let authority = self.entra.authority();
        let mut h = match &self.credential {
            Credential::Secret => {
                let h = self.env.helper().client_secret(
                    &authority,
                    &self.client,
                    &self.secret,
                    &self.tenant,
                );
                if self.forced {
                    h.env("ACR_ENTRA_CREDENTIAL", "client-secret")
                } else {
                    h
                }
            }
            Credential::Certificate { path, password } => {
                let h = self.env.helper().client_certificate(
                    &authority,
                    &self.client,
                    &self.tenant,
                    path,
                    password.as_deref(),
                );
                if self.forced {
                    h
                } else {
                    h.env_remove("ACR_ENTRA_CREDENTIAL")
                }
            }
            Credential::Federated { path } => {
                let h = self
                    .env
                    .helper()
                    .env("AZURE_AUTHORITY_HOST", &authority)
                    .env("AZURE_CLIENT_ID", &self.client)
                    .env("AZURE_TENANT_ID", &self.tenant)
                    .env("AZURE_FEDERATED_TOKEN_FILE", path.display().to_string());
                if self.forced {
                    h.env("ACR_ENTRA_CREDENTIAL", "workload-identity")
                } else {
                    h
                }
            }
        };
        if self.mapped {
            for acr in std::iter::once(&self.acr).chain(&self.others) {
                h = h.connect_to(&acr.connect_to());
            }
        }
        h
    }

    /// `get` for the registry.
    pub fn get(&self) -> Helper {
        self.get_with(&self.host)
    }

    /// `get` with exactly this on stdin: another spelling or another host.
    pub fn get_with(&self, stdin: &str) -> Helper {
        self.helper().arg("get").stdin(stdin)
    }

    /// The refresh tokens the fake ACR issued so far, in order.
    pub fn issued(&self) -> Vec<String> {
        self.acr.issued()
    }
}
