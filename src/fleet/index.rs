//! The node's index of the fleet: one [`Entry`] per machine (id, hostname, last_seen and the
//! four numbers the listing sorts by), kept up to date from the store by reading only what
//! changed, so the summary, the listing's filter/sort/page and `/metrics` cost one small
//! store round trip plus a scan of memory, not a read of every machine.
//!
//! Freshness: every read first asks the store for the machines recorded since the previous
//! read (`FleetStore::changed_since`), so an answer includes every report acknowledged before
//! the request, on any node. Deletions (the leader forgetting machines) show up as a count
//! that no longer matches; the index then reads the whole fleet again, which happens once per
//! forget pass, not per request. Reads share one refresh at a time.
//!
//! Memory: about 150 bytes per machine (100,000 machines: ~15 MB); full records are read only
//! for the machines of a page (`FleetStore::machines_by_id`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::view::{self, Entry, ListQuery, MachinePage, Summary, Thresholds};
use super::{FleetStore, Millis, StoreResult};

pub struct FleetIndex {
    store: Arc<dyn FleetStore>,
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    /// Unreadable records by machine id: named in `problems`, left out of everything else.
    problems: BTreeMap<String, String>,
    /// Where the next refresh starts; `None` before the first one.
    since: Option<Millis>,
    /// The store clock at the last refresh.
    now: Millis,
    /// Machines the store held at the last refresh.
    total_hint: usize,
}

impl State {
    fn problems(&self) -> Vec<String> {
        self.problems.values().cloned().collect()
    }
}

impl FleetIndex {
    pub fn new(store: Arc<dyn FleetStore>) -> FleetIndex {
        FleetIndex {
            store,
            state: tokio::sync::Mutex::new(State::default()),
        }
    }

    /// Bring the index up to date and run `f` on it.
    async fn with_fresh<T>(&self, f: impl FnOnce(&State) -> T) -> StoreResult<T> {
        let mut state = self.state.lock().await;
        let changes = self.store.changed_since(state.since).await?;
        let full = state.since.is_none();
        if full {
            state.entries.clear();
            state.problems.clear();
        }
        apply(&mut state, changes);
        if !full && state.entries.len() + state.problems.len() != state.total_hint {
            // Machines were deleted since the last read: start over from the whole fleet.
            let all = self.store.changed_since(None).await?;
            state.entries.clear();
            state.problems.clear();
            apply(&mut state, all);
        }
        Ok(f(&state))
    }

    /// `GET /api/fleet/summary`: the summary and the unreadable records.
    pub async fn summary(&self, t: &Thresholds) -> StoreResult<(Summary, Vec<String>)> {
        self.with_fresh(|s| (view::summary_of(s.entries.values(), s.now, t), s.problems()))
            .await
    }

    /// `GET /api/fleet/machines`: the page's ids from the index, their records from the store.
    pub async fn page(&self, q: &ListQuery, t: &Thresholds) -> StoreResult<MachinePage> {
        let (selection, now, problems) = self
            .with_fresh(|s| {
                (
                    view::select(s.entries.values(), q, s.now, t),
                    s.now,
                    s.problems(),
                )
            })
            .await?;
        let records = self.store.machines_by_id(&selection.machine_ids).await?;
        Ok(view::page(
            selection,
            &records.machines,
            q,
            now.max(records.now),
            t,
            problems,
        ))
    }
}

impl FleetIndex {
    /// The dashboard's view: the summary and a page from one refresh, with its store time.
    pub async fn summary_and_page(
        &self,
        q: &ListQuery,
        t: &Thresholds,
    ) -> StoreResult<(Summary, MachinePage, Millis)> {
        let (summary, selection, now, problems) = self
            .with_fresh(|s| {
                (
                    view::summary_of(s.entries.values(), s.now, t),
                    view::select(s.entries.values(), q, s.now, t),
                    s.now,
                    s.problems(),
                )
            })
            .await?;
        let records = self.store.machines_by_id(&selection.machine_ids).await?;
        let page = view::page(selection, &records.machines, q, now, t, problems);
        Ok((summary, page, now))
    }
}

fn apply(state: &mut State, changes: super::Changes) {
    for rec in &changes.machines {
        state.problems.remove(&rec.report.machine_id);
        state
            .entries
            .insert(rec.report.machine_id.clone(), Entry::of(rec));
    }
    for (id, why) in changes.problems {
        state.entries.remove(&id);
        state.problems.insert(id, why);
    }
    state.since = Some(changes.next_since);
    state.now = changes.now;
    state.total_hint = changes.total;
}
