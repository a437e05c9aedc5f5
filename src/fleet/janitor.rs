//! The leader-only job that keeps the machine list honest: it records when a machine went
//! offline (`storage.offline_after` without a report; logged once per outage) and forgets
//! machines silent for `storage.forget_after`, history included.
//!
//! States shown by the API are computed from `last_seen` at read time, so they are right even
//! between runs of this job; the job adds the `offline_since` mark, the log line and the
//! pruning. Only the leader runs it, so each outage is logged once for the whole cluster.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tracing::info;

use super::FleetStore;
use crate::cluster::manager::LeaderJob;
use crate::config::StorageConfig;

pub struct MachineJanitor {
    store: Arc<dyn FleetStore>,
    offline_after: Duration,
    forget_after: Duration,
}

impl MachineJanitor {
    pub fn new(store: Arc<dyn FleetStore>, config: &StorageConfig) -> MachineJanitor {
        MachineJanitor {
            store,
            offline_after: config.offline_after.as_duration(),
            forget_after: config.forget_after.as_duration(),
        }
    }
}

#[async_trait]
impl LeaderJob for MachineJanitor {
    fn name(&self) -> &str {
        "fleet-machines"
    }

    /// Often enough that `offline_since` lags the real moment by at most a tenth of
    /// `offline_after` (and never more than a minute).
    fn every(&self) -> Duration {
        (self.offline_after / 10).clamp(Duration::from_secs(1), Duration::from_secs(60))
    }

    async fn run(&self) -> anyhow::Result<String> {
        let offline = self.store.mark_offline(self.offline_after).await?;
        for id in &offline {
            info!(machine_id = %id, "machine went offline: no report for {}s", self.offline_after.as_secs());
        }
        let forgotten = self.store.forget(self.forget_after).await?;
        for id in &forgotten {
            info!(machine_id = %id, "forgot machine: no report for {}s", self.forget_after.as_secs());
        }
        Ok(format!(
            "{} machine(s) newly offline, {} forgotten",
            offline.len(),
            forgotten.len()
        ))
    }
}
