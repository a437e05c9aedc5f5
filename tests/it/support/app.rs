//! An in-process node for `app(state).oneshot(request)` tests: the cluster backend the config
//! names, a registered `ClusterManager`, and the `AppState` the router needs. Tests add the
//! session and fleet stores they exercise with `with_sessions` / `with_fleet`.

use std::sync::Arc;

use fleetctl::cluster::{ClusterManager, NodeInfo, Timings, backend};
use fleetctl::config::Config;
use fleetctl::server::AppState;

/// A node called `node_id`, registered (and leader) in `config.cluster`'s backend.
pub async fn node_state(config: Config, node_id: &str) -> AppState {
    let backend = backend::open(&config.cluster)
        .await
        .expect("open the cluster backend");
    let info = NodeInfo {
        node_id: node_id.into(),
        hostname: "localhost".into(),
        port: 8768,
        url: "http://localhost:8768".into(),
        version: "test".into(),
    };
    let manager: Arc<ClusterManager> =
        ClusterManager::new(backend, info, Timings::from_config(&config.cluster), vec![]);
    manager.tick().await;
    AppState::new(config, manager)
}
