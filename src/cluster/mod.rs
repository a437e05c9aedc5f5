//! Cluster membership: nodes, their states, and the manager that registers this node,
//! heartbeats, holds the leader lease and drains.

pub mod backend;
pub mod file;
pub mod redis;
pub mod sqlite;
