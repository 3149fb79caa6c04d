//! One integration test binary: it runs the built `docker-credential-acr-entra` with a
//! cleared environment against loopback fakes (Entra, managed identity endpoints, ACR,
//! `az`/`azd` scripts) that each test starts for itself, and checks exact stdout, stderr
//! and exit codes against the contract. Tests share nothing but the test CA, so they run in
//! parallel.

// The fakes are Unix: `/bin/sh` scripts for `az`/`azd`, modes, `setpriv`, signals.
#![cfg(unix)]
#![allow(clippy::pedantic)]
// Tests plant, damage and inspect files directly, and may pick another binary by env.
#![allow(clippy::disallowed_methods)]

mod support;

// By what they protect.
mod anonymous;
mod cache;
mod cache_policy;
mod ci;
mod completions;
mod concurrency;
mod config;
mod credentials;
mod docs;
mod durability;
mod entra_sharing;
mod exchange;
mod failures;
mod fakes_selftest;
mod faults;
mod hosts;
mod install_script;
mod lifetimes;
mod logging;
mod protocol;
mod redaction;
mod store;
mod subcommands;
mod throttling;
mod trust_dirs;
mod trust_tokens;
