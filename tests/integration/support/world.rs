//! The most common set-up, ready-made: a test's private world with a fake Entra and a
//! fake ACR named `host`, and a client secret for them, so a test starts with
//! `let w = World::start(HOST);` and `w.get().run()` mints for real through the fakes.

use super::env::{Helper, TestEnv};
use super::{FakeAcr, FakeEntra};

pub const CLIENT: &str = "aaaaaaaa-0000-4000-8000-000000000001";
pub const SECRET: &str = "world-client-secret";
pub const TENANT: &str = "tenant-world-0001";

pub struct World {
    pub env: TestEnv,
    pub entra: FakeEntra,
    pub acr: FakeAcr,
    pub host: String,
}

impl World {
    pub fn start(host: &str) -> World {
        World {
            env: TestEnv::new(),
            entra: FakeEntra::start(),
            acr: FakeAcr::start(host),
            host: host.to_string(),
        }
    }

    /// The helper with the client-secret credential forced and the registry reachable.
    pub fn helper(&self) -> Helper {
        self.env
            .helper()
            .env("ACR_ENTRA_CREDENTIAL", "client-secret")
            .client_secret(&self.entra.authority(), CLIENT, SECRET, TENANT)
            .connect_to(&self.acr.connect_to())
    }

    /// `get` for the registry.
    pub fn get(&self) -> Helper {
        self.helper().arg("get").stdin(&self.host)
    }

    /// The refresh tokens the fake ACR issued so far, in order.
    pub fn issued(&self) -> Vec<String> {
        self.acr.issued()
    }
}
