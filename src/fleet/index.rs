//! The node's index of the fleet: one [`Entry`] per machine (id, hostname, last_seen and the
//! four numbers the listing sorts by), kept up to date from the store by reading only what
//! changed, so the summary, the listing's filter/sort/page and `/metrics` cost one small
//! store round trip plus a scan of memory, not a read of every machine.
//!
//! Freshness: every read first asks the store for the machines recorded since the previous
//! read (`FleetStore::changed_since`), so an answer includes every report acknowledged before
//! the request, on any node (requests that queue behind a refresh which started after they
//! arrived share it). Deletions (the leader forgetting machines) show up as a count
//! that no longer matches; the index then reads the whole fleet again, which happens once per
//! forget pass, not per request. Reads share one refresh at a time.
//!
//! Memory: about 150 bytes per machine (100,000 machines: ~15 MB); full records are read only
//! for the machines of a page (`FleetStore::machines_by_id`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use super::view::{self, Entry, ListQuery, MachinePage, Summary, Thresholds};
use super::{FleetStore, Millis, StoreResult};

pub struct FleetIndex {
    store: Arc<dyn FleetStore>,
    state: tokio::sync::Mutex<State>,
    /// Summaries and page selections, reused while nothing changed: a wall of dashboards
    /// costs one scan of the index per change, not one per request.
    summaries: Memo<ThresholdsKey, Summary>,
    selections: Memo<(ListQuery, ThresholdsKey), view::Selection>,
}

#[derive(Default)]
struct State {
    /// A persistent map: a reader takes a copy in O(1) and computes without the lock while
    /// the next refresh updates the original.
    entries: imbl::HashMap<String, Entry>,
    /// Unreadable records by machine id: named in `problems`, left out of everything else.
    problems: BTreeMap<String, String>,
    /// Where the next refresh starts; `None` before the first one.
    since: Option<Millis>,
    /// The store clock at the last refresh.
    now: Millis,
    /// Machines the store held at the last refresh.
    total_hint: usize,
    /// When the last successful refresh started.
    refreshed: Option<Instant>,
    /// Bumped by every refresh that changed something.
    generation: u64,
}

impl State {
    fn problems(&self) -> Vec<String> {
        self.problems.values().cloned().collect()
    }

    fn fresh(&self) -> Fresh {
        Fresh {
            entries: self.entries.clone(),
            problems: self.problems(),
            now: self.now,
            generation: self.generation,
        }
    }
}

/// What a request computes on, taken from the index without holding its lock.
struct Fresh {
    entries: imbl::HashMap<String, Entry>,
    problems: Vec<String>,
    now: Millis,
    generation: u64,
}

impl FleetIndex {
    pub fn new(store: Arc<dyn FleetStore>) -> FleetIndex {
        FleetIndex {
            store,
            state: tokio::sync::Mutex::new(State::default()),
            summaries: Memo::new(),
            selections: Memo::new(),
        }
    }

    /// Bring the index up to date and take an O(1) copy to compute on outside the lock.
    async fn refresh(&self) -> StoreResult<Fresh> {
        let arrived = Instant::now();
        let mut state = self.state.lock().await;
        // Requests that queued behind a refresh which started after they arrived share it:
        // it already holds every write acknowledged before they came in.
        if state.refreshed.is_some_and(|started| started > arrived) {
            return Ok(state.fresh());
        }
        state.refreshed = Some(Instant::now());
        let changes = match self.store.changed_since(state.since).await {
            Ok(c) => c,
            Err(e) => {
                state.refreshed = None;
                return Err(e);
            }
        };
        let full = state.since.is_none();
        if full {
            state.entries.clear();
            state.problems.clear();
            state.generation += 1;
        }
        apply(&mut state, changes);
        if !full && state.entries.len() + state.problems.len() != state.total_hint {
            // Machines were deleted since the last read: start over from the whole fleet.
            let all = self.store.changed_since(None).await.inspect_err(|_| {
                state.refreshed = None;
                state.since = None;
            })?;
            state.entries.clear();
            state.problems.clear();
            state.generation += 1;
            apply(&mut state, all);
        }
        Ok(state.fresh())
    }

    /// `GET /api/fleet/summary`: the summary and the unreadable records.
    pub async fn summary(&self, t: &Thresholds) -> StoreResult<(Summary, Vec<String>)> {
        let fresh = self.refresh().await?;
        let summary = self.summary_of(&fresh, t).await;
        Ok((summary, fresh.problems))
    }

    /// The summary of one state of the index (memoized).
    async fn summary_of(&self, fresh: &Fresh, t: &Thresholds) -> Summary {
        self.summaries
            .get_or(fresh, thresholds_key(t), || {
                view::summary_of(fresh.entries.values(), fresh.now, t)
            })
            .await
    }

    /// Which machines are on the page, from the index (memoized like the summary).
    async fn select(&self, fresh: &Fresh, q: &ListQuery, t: &Thresholds) -> view::Selection {
        self.selections
            .get_or(fresh, (q.clone(), thresholds_key(t)), || {
                view::select(fresh.entries.values(), q, fresh.now, t)
            })
            .await
    }

    /// `GET /api/fleet/machines`: the page's ids from the index, their records from the store.
    pub async fn page(&self, q: &ListQuery, t: &Thresholds) -> StoreResult<MachinePage> {
        let fresh = self.refresh().await?;
        let selection = self.select(&fresh, q, t).await;
        let records = self.store.machines_by_id(&selection.machine_ids).await?;
        Ok(view::page(
            selection,
            &records.machines,
            q,
            fresh.now.max(records.now),
            t,
            fresh.problems,
        ))
    }

    /// The dashboard's view: the summary and a page from one refresh, with its store time.
    pub async fn summary_and_page(
        &self,
        q: &ListQuery,
        t: &Thresholds,
    ) -> StoreResult<(Summary, MachinePage, Millis)> {
        let fresh = self.refresh().await?;
        let summary = self.summary_of(&fresh, t).await;
        let selection = self.select(&fresh, q, t).await;
        let records = self.store.machines_by_id(&selection.machine_ids).await?;
        let now = fresh.now;
        let page = view::page(selection, &records.machines, q, now, t, fresh.problems);
        Ok((summary, page, now))
    }
}

type ThresholdsKey = (std::time::Duration, std::time::Duration);

fn thresholds_key(t: &Thresholds) -> ThresholdsKey {
    (t.stale_after, t.offline_after)
}

/// Results computed from one state of the index, reused while the index has not changed and
/// they are under `REUSE_MS` old (machine states depend on the clock), and computed once when
/// many requests ask at the same moment (the lock is held while computing).
struct Memo<K, V> {
    slots: tokio::sync::Mutex<Vec<Memoized<K, V>>>,
}

struct Memoized<K, V> {
    generation: u64,
    now: Millis,
    key: K,
    value: V,
}

/// How old (store clock) a reused result may be.
const REUSE_MS: Millis = 1_000;
/// Distinct queries remembered per index state.
const MEMO_SLOTS: usize = 16;

impl<K: PartialEq, V: Clone> Memo<K, V> {
    fn new() -> Memo<K, V> {
        Memo {
            slots: tokio::sync::Mutex::new(Vec::new()),
        }
    }

    async fn get_or(&self, fresh: &Fresh, key: K, compute: impl FnOnce() -> V) -> V {
        let mut slots = self.slots.lock().await;
        if let Some(m) = slots.iter().find(|m| {
            m.generation == fresh.generation && m.key == key && fresh.now - m.now < REUSE_MS
        }) {
            return m.value.clone();
        }
        let value = compute();
        slots.retain(|m| m.generation == fresh.generation && fresh.now - m.now < REUSE_MS);
        if slots.len() >= MEMO_SLOTS {
            slots.remove(0);
        }
        slots.push(Memoized {
            generation: fresh.generation,
            now: fresh.now,
            key,
            value: value.clone(),
        });
        value
    }
}

fn apply(state: &mut State, changes: super::Changes) {
    let mut changed = false;
    for rec in &changes.machines {
        let id = &rec.report.machine_id;
        changed |= state.problems.remove(id).is_some();
        let entry = Entry::of(rec);
        // Stores may return a machine again (an overlap of their clock): only a real change
        // invalidates the cached summary.
        if state.entries.get(id) != Some(&entry) {
            state.entries.insert(id.clone(), entry);
            changed = true;
        }
    }
    for (id, why) in changes.problems {
        state.entries.remove(&id);
        changed |= state.problems.insert(id, why).is_none();
    }
    if changed {
        state.generation += 1;
    }
    state.since = Some(changes.next_since);
    state.now = changes.now;
    state.total_hint = changes.total;
}
