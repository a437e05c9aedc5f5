//! Integration tests, compiled into one binary so the suite links once.
//!
//! Each test starts the real components it needs (a private redis-server on a free port,
//! `fleetctl serve` processes, haproxy, nginx, chromium). A missing component fails the test.

mod cli_sessions;
mod cluster_api;
mod cluster_check;
mod cluster_conformance;
mod cluster_manager;
mod cluster_nodes;
mod config_cli;
mod dashboard_browser;
mod dashboard_pages;
mod docs;
mod fleet_api;
mod fleet_cluster;
mod fleet_store;
mod guides;
mod ha;
mod ha_sentinel;
mod hardening;
mod hostile;
mod lb_configs;
mod login_api;
mod login_nodes;
mod migrate;
mod migrate_postgres;
mod packaging;
mod postgres_schema;
mod postgres_tls;
mod prometheus;
mod proptests;
mod redis_topologies;
mod session_conformance;
mod support;
mod systemd_notify;
mod tls;
