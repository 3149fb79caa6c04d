//! Loopback fakes and the runner shared by every integration test.

// A toolbox for later tests too: not every helper is used by today's tests.
#![allow(dead_code)]

pub mod acr;
pub mod ci;
pub mod cli;
pub mod entra;
pub mod env;
pub mod hostile;
pub mod http;
pub mod identity;
pub mod jwt;
pub mod rng;
pub mod subcommands;
pub mod tls;
pub mod users;
pub mod world;

pub use acr::{ACR_AUDIENCE, ARM_AUDIENCE, ExchangeMode, FakeAcr, V2Mode};
pub use cli::{CliMode, FakeCli, Tool};
pub use entra::{EntraMode, FakeEntra};
pub use env::{Output, TestEnv, answer_json};
pub use identity::{FakeAppService, FakeArc, FakeImds};
pub use world::World;

pub const ACR_SCOPE: &str = "https://containerregistry.azure.net/.default";
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";
