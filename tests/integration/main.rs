//! One integration test binary: it runs the built `docker-credential-acr-entra` with a
//! cleared environment against loopback fakes (Entra, managed identity endpoints, ACR,
//! `az`/`azd` scripts) that each test starts for itself, and checks exact stdout, stderr
//! and exit codes against SPEC.md. Tests share nothing but the test CA, so they run in
//! parallel.

#![allow(clippy::pedantic)]
// Tests plant, damage and inspect files directly, and may pick another binary by env.
#![allow(clippy::disallowed_methods)]

mod support;

mod cache;
mod cache_policy;
mod cli_configure;
mod cli_doctor;
mod cli_kubelet;
mod cli_token;
mod config;
mod credentials;
mod exchange;
mod failures;
mod fakes_selftest;
mod hardening_faults;
mod hardening_files;
mod hardening_hosts;
mod hardening_secrets;
mod hardening_storm;
mod logging;
mod protocol;
mod store;
mod trust_dirs;
mod trust_tokens;
