//! An in-process node for `app(state).oneshot(request)` tests, started exactly as `fleetctl
//! serve` starts one (`fleetctl::node::Node::start`): every store the config names, a
//! registered `ClusterManager` with its leader jobs, and the `AppState` the router needs.
//! Tests that look into a store open their own handle on the same database or Redis.

use fleetctl::cluster::NodeInfo;
use fleetctl::config::Config;
use fleetctl::node::{Node, Stores};
use fleetctl::server::AppState;

/// Where stores the test did not place go (one directory per test process, left in the
/// system temp directory).
static SCRATCH: std::sync::LazyLock<std::path::PathBuf> =
    std::sync::LazyLock::new(|| tempfile::tempdir().expect("tempdir").keep());

/// A node called `node_id`, registered (and leader) in `config.cluster`'s backend.
pub async fn node_state(config: Config, node_id: &str) -> AppState {
    start_node(config, node_id).await.state().clone()
}

pub async fn start_node(mut config: Config, node_id: &str) -> Node {
    // A store path the test left at its relative default would land in the repository.
    let scratch = std::sync::LazyLock::force(&SCRATCH);
    for path in [
        &mut config.cluster.state_path,
        &mut config.sessions.db_path,
        &mut config.sessions.session_dir,
        &mut config.storage.db_path,
    ] {
        if path.is_relative() {
            *path = scratch.join(node_id).join(&*path);
        }
    }
    let info = NodeInfo {
        node_id: node_id.into(),
        hostname: "localhost".into(),
        port: 8768,
        url: "http://localhost:8768".into(),
        version: "test".into(),
    };
    let stores = Stores::open_all(&config).await.expect("open the stores");
    Node::start(config, info, stores).await
}
