//! The leader-only job that removes expired sessions, so SQLite and file stores do not grow
//! without bound. It runs `SessionStore::delete_expired` — the same work as
//! `fleetctl sessions gc` — on one node of the cluster at a time.
//!
//! On Redis the keys expire by themselves; there `delete_expired` deletes nothing and only
//! drops per-user index entries that point at expired sessions, which is cheap and keeps
//! `sessions list --user` and `revoke --user` fast. No backend is special-cased here.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::SessionStore;
use crate::cluster::manager::LeaderJob;

/// How often the leader collects. Expired sessions are already invisible (a load treats them
/// as absent); this only reclaims space, so minutes are fine.
pub const GC_EVERY: Duration = Duration::from_secs(300);

pub struct SessionJanitor {
    store: Arc<dyn SessionStore>,
}

impl SessionJanitor {
    pub fn new(store: Arc<dyn SessionStore>) -> SessionJanitor {
        SessionJanitor { store }
    }
}

#[async_trait]
impl LeaderJob for SessionJanitor {
    fn name(&self) -> &str {
        "session-gc"
    }

    fn every(&self) -> Duration {
        GC_EVERY
    }

    async fn run(&self) -> anyhow::Result<String> {
        let removed = self.store.delete_expired(&|_| {}).await?;
        Ok(format!(
            "deleted {removed} expired session(s) from the {} store",
            self.store.backend()
        ))
    }
}
