//! Integration tests, compiled into one binary so the suite links once.
//!
//! Each test starts the real components it needs (a private redis-server on a free port,
//! `fleetctl serve` processes, haproxy, nginx, chromium). A missing component fails the test.

mod cluster_api;
mod cluster_nodes;
mod lb_configs;
mod support;
