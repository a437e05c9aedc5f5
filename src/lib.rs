//! fleetctl: a fleet-monitoring server that keeps running when one of its hosts dies.
//!
//! Agents report host metrics with an API key; admins use a dashboard, a JSON API and the
//! `fleetctl` CLI. Several `fleetctl serve` nodes run active-active behind a load balancer and
//! coordinate through a shared backend (Redis, SQLite or files): they register, heartbeat, notice
//! dead peers, elect a leader for singleton jobs and share login sessions.
//!
//! The binary (`src/main.rs`) only parses arguments and maps errors to exit codes; everything it
//! does lives in this library so tests can drive it without a process.

pub mod agent;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod config;
pub mod credentials;
pub mod exit;
pub mod fleet;
pub mod lb;
pub mod migrate;
pub mod node;
pub mod output;
pub mod server;
pub mod sessions;
pub mod store;
pub mod systemd;
