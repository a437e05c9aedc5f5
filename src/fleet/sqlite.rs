//! The SQLite fleet store: the embedded default for one host.
//!
//! One database file, opened and written through `store::sqlite::Db`: readers never wait for
//! the writer, several processes on one host (nodes sharing the file) queue for the write lock
//! instead of failing, and every write is one `BEGIN IMMEDIATE` transaction. The clock is
//! SQLite's own (`store::sqlite::NOW_MS`). This file keeps the schema and the SQL.
//!
//! Schema (owned here; nothing else spells it):
//! - `fleet_machines`: one row per machine with its latest report (JSON) and timestamps.
//! - `fleet_history`: rollup rows keyed by (machine, tier, bucket start) holding sums, so a
//!   new report merges in with one UPSERT.
//! - `fleet_api_keys`: last use of each API key, by name.
//!
//! API key names (`fleet_api_keys.name`, `fleet_machines.api_key`) are stored as `Sealing`
//! writes them: sealed deterministically when there is a keyring, so the primary key still
//! finds the row.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Transaction, params};

use super::{
    Changes, ExportPage, FleetStore, HistoryPoint, KeyUsage, MachineDump, MachineRecord, Millis,
    RESEAL_BATCH, Report, ResealCount, ResealProgress, Rollup, Sealing, Snapshot, StoreError,
    StoreResult, TIERS, Tier, merge_key_usage, open_key_usage, sample_of, trim_history,
};
use super::{MachineMeta, machine_record};
use crate::config::BackendKind;
use crate::store::sqlite::{Db, DbError, Schema, now_ms};

const SCHEMA: Schema = Schema {
    version_table: "fleet_schema_version",
    version: 1,
    sql: "
CREATE TABLE IF NOT EXISTS fleet_machines (
    machine_id    TEXT PRIMARY KEY,
    report        TEXT NOT NULL,
    report_ts     INTEGER NOT NULL,
    first_seen    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    api_key       TEXT NOT NULL,
    offline_since INTEGER
);
CREATE INDEX IF NOT EXISTS fleet_machines_last_seen ON fleet_machines (last_seen);
CREATE TABLE IF NOT EXISTS fleet_history (
    machine_id TEXT NOT NULL,
    tier       INTEGER NOT NULL,
    t          INTEGER NOT NULL,
    n          INTEGER NOT NULL,
    cpu_sum    REAL NOT NULL,
    cpu_max    REAL NOT NULL,
    mem_sum    REAL NOT NULL,
    load_sum   REAL NOT NULL,
    disk_max   REAL NOT NULL,
    rx         REAL NOT NULL,
    tx         REAL NOT NULL,
    PRIMARY KEY (machine_id, tier, t)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fleet_api_keys (
    name      TEXT PRIMARY KEY,
    last_used INTEGER NOT NULL
);
",
};

pub struct SqliteFleetStore {
    /// WAL + NORMAL: a power cut can lose the last reports, never corrupt the file.
    db: Db,
    /// Seals key names, and reports when `storage.encrypt_reports`.
    sealing: Sealing,
}

impl SqliteFleetStore {
    pub async fn open(path: &Path, sealing: Sealing) -> StoreResult<SqliteFleetStore> {
        Ok(SqliteFleetStore {
            db: Db::open(path, SCHEMA).await?,
            sealing,
        })
    }
}

impl SqliteFleetStore {
    /// The key usage rows as stored (names maybe sealed).
    async fn stored_key_usage(&self) -> StoreResult<Vec<(String, Millis)>> {
        Ok(self
            .db
            .read(|c| {
                c.prepare_cached("SELECT name, last_used FROM fleet_api_keys")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })
            .await?)
    }
}

impl From<DbError> for StoreError {
    fn from(e: DbError) -> StoreError {
        StoreError::Unavailable {
            backend: BackendKind::Sqlite,
            location: e.path.display().to_string(),
            message: e.message,
        }
    }
}

/// Trim tier `tier` (index `i`) of machine `id` to its bounds at store time `now`: by age,
/// then to the newest `max_points`.
fn trim_tier(
    tx: &Transaction,
    id: &str,
    i: usize,
    tier: &Tier,
    now: Millis,
) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM fleet_history WHERE machine_id = ?1 AND tier = ?2 AND t < ?3")?
        .execute(params![id, i as i64, now - tier.retention_ms])?;
    tx.prepare_cached(
        "DELETE FROM fleet_history WHERE machine_id = ?1 AND tier = ?2 AND t <= (
             SELECT t FROM fleet_history WHERE machine_id = ?1 AND tier = ?2
             ORDER BY t DESC LIMIT 1 OFFSET ?3)",
    )?
    .execute(params![id, i as i64, tier.max_points as i64])?;
    Ok(())
}

fn rollup_from_row(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Rollup> {
    Ok(Rollup {
        t: r.get(first)?,
        n: r.get::<_, i64>(first + 1)? as u64,
        cpu_sum: r.get(first + 2)?,
        cpu_max: r.get(first + 3)?,
        mem_sum: r.get(first + 4)?,
        load_sum: r.get(first + 5)?,
        disk_max: r.get(first + 6)?,
        rx: r.get(first + 7)?,
        tx: r.get(first + 8)?,
    })
}

/// Run `sql` (an `UPDATE` or `DELETE … RETURNING machine_id`) with `?1` = the store's clock and
/// `?2` = `silent_for` before it; returns the ids of the machines it touched.
fn silent_machines(
    tx: &Transaction,
    sql: &str,
    silent_for: Duration,
) -> rusqlite::Result<Vec<String>> {
    let now = now_ms(tx)?;
    let horizon = now - silent_for.as_millis() as i64;
    tx.prepare_cached(sql)?
        .query_map(params![now, horizon], |r| r.get(0))?
        .collect()
}

fn record_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, MachineMeta)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        MachineMeta {
            first_seen: row.get(2)?,
            last_seen: row.get(3)?,
            api_key: row.get(4)?,
            offline_since: row.get(5)?,
        },
    ))
}

/// How far back `changed_since` tells the next reader to look again (see there).
const SINCE_OVERLAP_MS: Millis = 5_000;

const SELECT_MACHINE: &str =
    "SELECT machine_id, report, first_seen, last_seen, api_key, offline_since FROM fleet_machines";

#[async_trait]
impl FleetStore for SqliteFleetStore {
    fn kind(&self) -> BackendKind {
        BackendKind::Sqlite
    }

    fn location(&self) -> String {
        self.db.path().display().to_string()
    }

    async fn now(&self) -> StoreResult<Millis> {
        Ok(self.db.read(now_ms).await?)
    }

    async fn record(&self, report: &Report, api_key: &str) -> StoreResult<Millis> {
        let json = self.sealing.seal_report(&report.machine_id, report)?;
        let measured = report.measured_at();
        let sample = sample_of(report, measured);
        let id = report.machine_id.clone();
        let key = self.sealing.key_name(api_key);
        let recorded = self.db.write(move |tx| {
            let now = now_ms(tx)?;
            if !Report::time_in_range(measured, now) {
                return Ok(Err(now));
            }
            tx.prepare_cached(
                "INSERT INTO fleet_machines
                     (machine_id, report, report_ts, first_seen, last_seen, api_key, offline_since)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5, NULL)
                 ON CONFLICT (machine_id) DO UPDATE SET
                     report = CASE WHEN excluded.report_ts >= report_ts THEN excluded.report ELSE report END,
                     report_ts = max(report_ts, excluded.report_ts),
                     last_seen = excluded.last_seen,
                     api_key = excluded.api_key,
                     offline_since = NULL",
            )?
            .execute(params![id, json, measured, now, key])?;
            tx.prepare_cached(
                "INSERT INTO fleet_api_keys (name, last_used) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET last_used = excluded.last_used",
            )?
            .execute(params![key, now])?;
            for (i, tier) in TIERS.iter().enumerate() {
                let horizon = now - tier.retention_ms;
                if sample.t >= horizon {
                    tx.prepare_cached(
                        "INSERT INTO fleet_history VALUES (?1, ?2, ?3, 1, ?4, ?4, ?5, ?6, ?7, ?8, ?9)
                         ON CONFLICT (machine_id, tier, t) DO UPDATE SET
                             n = n + 1,
                             cpu_sum = cpu_sum + excluded.cpu_sum,
                             cpu_max = max(cpu_max, excluded.cpu_max),
                             mem_sum = mem_sum + excluded.mem_sum,
                             load_sum = load_sum + excluded.load_sum,
                             disk_max = max(disk_max, excluded.disk_max),
                             rx = max(rx, excluded.rx),
                             tx = max(tx, excluded.tx)",
                    )?
                    .execute(params![
                        id,
                        i as i64,
                        tier.bucket_start(sample.t),
                        sample.cpu_percent,
                        sample.memory_percent,
                        sample.load1,
                        sample.disk_percent,
                        sample.rx_bytes,
                        sample.tx_bytes
                    ])?;
                }
                trim_tier(tx, &id, i, tier, now)?;
            }
            Ok(Ok(now))
        })
        .await?;
        recorded.map_err(|now| StoreError::OutOfRange { now })
    }

    async fn machines(&self) -> StoreResult<Snapshot> {
        let changes = self.changed_since(None).await?;
        Ok(Snapshot {
            now: changes.now,
            machines: changes.machines,
            problems: changes.problems.into_iter().map(|(_, m)| m).collect(),
        })
    }

    async fn changed_since(&self, since: Option<Millis>) -> StoreResult<Changes> {
        // One read transaction: the clock, the count and the rows come from one snapshot.
        let (now, total, rows) = self
            .db
            .read(move |c| {
                let now = now_ms(c)?;
                let total: i64 =
                    c.query_row("SELECT COUNT(*) FROM fleet_machines", [], |r| r.get(0))?;
                let rows = match since {
                    None => c
                        .prepare_cached(SELECT_MACHINE)?
                        .query_map([], record_from_row)?
                        .collect::<rusqlite::Result<Vec<_>>>()?,
                    Some(since) => c
                        .prepare_cached(&format!("{SELECT_MACHINE} WHERE last_seen >= ?1"))?
                        .query_map([since], record_from_row)?
                        .collect::<rusqlite::Result<Vec<_>>>()?,
                };
                Ok((now, total as usize, rows))
            })
            .await?;
        let mut changes = Changes {
            now,
            // A writer reads the clock inside its transaction and commits moments later, so
            // a record can become visible with a `last_seen` a little before this read.
            next_since: now - SINCE_OVERLAP_MS,
            total,
            ..Changes::default()
        };
        for (id, json, meta) in rows {
            match machine_record(&self.sealing, &id, &json, meta) {
                Ok(r) => changes.machines.push(r),
                Err(p) => changes.problems.push((id, p.message())),
            }
        }
        Ok(changes)
    }

    async fn machines_by_id(&self, machine_ids: &[String]) -> StoreResult<Snapshot> {
        let ids = machine_ids.to_vec();
        let (now, rows) = self
            .db
            .read(move |c| {
                let now = now_ms(c)?;
                let mut stmt =
                    c.prepare_cached(&format!("{SELECT_MACHINE} WHERE machine_id = ?1"))?;
                let mut rows = Vec::with_capacity(ids.len());
                for id in &ids {
                    if let Some(row) = stmt.query_row([id], record_from_row).optional()? {
                        rows.push(row);
                    }
                }
                Ok((now, rows))
            })
            .await?;
        let mut snap = Snapshot {
            now,
            ..Snapshot::default()
        };
        for (id, json, meta) in rows {
            match machine_record(&self.sealing, &id, &json, meta) {
                Ok(r) => snap.machines.push(r),
                Err(p) => snap.problems.push(p.message()),
            }
        }
        Ok(snap)
    }

    async fn machine(&self, machine_id: &str) -> StoreResult<Option<MachineRecord>> {
        let id = machine_id.to_string();
        let row = self
            .db
            .read(move |c| {
                c.prepare_cached(&format!("{SELECT_MACHINE} WHERE machine_id = ?1"))?
                    .query_row([id], record_from_row)
                    .optional()
            })
            .await?;
        match row {
            None => Ok(None),
            Some((id, json, meta)) => super::machine_or_absent(
                BackendKind::Sqlite,
                machine_id,
                machine_record(&self.sealing, &id, &json, meta),
            ),
        }
    }

    async fn history(
        &self,
        machine_id: &str,
        tier: Tier,
        from: Millis,
        to: Millis,
    ) -> StoreResult<Vec<HistoryPoint>> {
        let id = machine_id.to_string();
        Ok(self
            .db
            .read(move |c| {
                c.prepare_cached(
                    "SELECT t, n, cpu_sum, cpu_max, mem_sum, load_sum, disk_max, rx, tx
                 FROM fleet_history WHERE machine_id = ?1 AND tier = ?2 AND t BETWEEN ?3 AND ?4
                 ORDER BY t",
                )?
                .query_map(params![id, tier.index() as i64, from, to], |r| {
                    Ok(rollup_from_row(r, 0)?.point())
                })?
                .collect()
            })
            .await?)
    }

    async fn history_len(&self, machine_id: &str) -> StoreResult<[usize; 3]> {
        let id = machine_id.to_string();
        Ok(self
            .db
            .read(move |c| {
                let mut out = [0usize; 3];
                let mut stmt = c.prepare_cached(
                    "SELECT tier, count(*) FROM fleet_history WHERE machine_id = ?1 GROUP BY tier",
                )?;
                let rows =
                    stmt.query_map([id], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
                for row in rows {
                    let (tier, n) = row?;
                    if let Some(slot) = out.get_mut(tier as usize) {
                        *slot = n as usize;
                    }
                }
                Ok(out)
            })
            .await?)
    }

    async fn mark_offline(&self, silent_for: Duration) -> StoreResult<Vec<String>> {
        let sql = "UPDATE fleet_machines SET offline_since = ?1
                   WHERE last_seen < ?2 AND offline_since IS NULL RETURNING machine_id";
        Ok(self
            .db
            .write(move |tx| silent_machines(tx, sql, silent_for))
            .await?)
    }

    async fn forget(&self, silent_for: Duration) -> StoreResult<Vec<String>> {
        let sql = "DELETE FROM fleet_machines WHERE last_seen < ?2 RETURNING machine_id";
        Ok(self
            .db
            .write(move |tx| {
                let ids = silent_machines(tx, sql, silent_for)?;
                for id in &ids {
                    tx.prepare_cached("DELETE FROM fleet_history WHERE machine_id = ?1")?
                        .execute([id])?;
                }
                Ok(ids)
            })
            .await?)
    }

    async fn reseal(&self, progress: ResealProgress<'_>) -> StoreResult<ResealCount> {
        let (keys, machines) = self
            .db
            .read(|c| {
                let count = |table: &str| {
                    c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| {
                        r.get::<_, i64>(0)
                    })
                };
                Ok((count("fleet_api_keys")?, count("fleet_machines")?))
            })
            .await?;
        let total = (keys + machines) as u64;
        progress(0, total);

        // Key usage entries: few (one per API key), one transaction.
        let sealing = self.sealing.clone();
        let mut count = self
            .db
            .write(move |tx| {
                let rows: Vec<(String, Millis)> = tx
                    .prepare("SELECT name, last_used FROM fleet_api_keys")?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                let mut batch = ResealCount::default();
                for (stored, last_used) in &rows {
                    batch.examined += 1;
                    if sealing.key_name_is_current(stored) {
                        continue;
                    }
                    let Ok(name) = sealing.open_key_name(stored, "API key usage") else {
                        batch.unreadable += 1;
                        continue;
                    };
                    tx.execute("DELETE FROM fleet_api_keys WHERE name = ?1", [stored])?;
                    tx.execute(
                        "INSERT INTO fleet_api_keys (name, last_used) VALUES (?1, ?2)
                         ON CONFLICT (name) DO UPDATE SET
                             last_used = max(last_used, excluded.last_used)",
                        params![sealing.key_name(&name), last_used],
                    )?;
                    batch.resealed += 1;
                }
                Ok(batch)
            })
            .await?;
        progress(count.examined, total);

        // Machines: the report and the key name, in batches of one transaction each.
        let mut after = String::new();
        loop {
            let sealing = self.sealing.clone();
            let from = std::mem::take(&mut after);
            let (batch, last) = self
                .db
                .write(move |tx| {
                    let rows: Vec<(String, String, String)> = tx
                        .prepare(
                            "SELECT machine_id, report, api_key FROM fleet_machines
                             WHERE machine_id > ?1 ORDER BY machine_id LIMIT ?2",
                        )?
                        .query_map(params![from, RESEAL_BATCH as i64], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                        })?
                        .collect::<rusqlite::Result<_>>()?;
                    let mut batch = ResealCount::default();
                    for (id, report, key) in &rows {
                        batch.examined += 1;
                        let (new_report, new_key) = match sealing.reseal_machine(id, report, key) {
                            Ok(None) => continue,
                            Ok(Some(new)) => new,
                            Err(()) => {
                                batch.unreadable += 1;
                                continue;
                            }
                        };
                        tx.execute(
                            "UPDATE fleet_machines SET report = ?2, api_key = ?3
                             WHERE machine_id = ?1",
                            params![id, new_report, new_key],
                        )?;
                        batch.resealed += 1;
                    }
                    Ok((batch, rows.last().map(|r| r.0.clone())))
                })
                .await?;
            count.add(batch);
            progress(count.examined, total.max(count.examined));
            match last {
                Some(last) if batch.examined == RESEAL_BATCH as u64 => after = last,
                _ => return Ok(count),
            }
        }
    }

    async fn key_usage(&self) -> StoreResult<Vec<KeyUsage>> {
        Ok(merge_key_usage(
            &self.sealing,
            self.stored_key_usage().await?,
        ))
    }

    async fn export_key_usage(&self) -> StoreResult<ExportPage<KeyUsage>> {
        let (records, unreadable) = open_key_usage(&self.sealing, self.stored_key_usage().await?);
        Ok(ExportPage {
            records,
            unreadable,
            next: None,
        })
    }

    async fn export_machines(
        &self,
        cursor: Option<String>,
        limit: usize,
    ) -> StoreResult<ExportPage<MachineDump>> {
        let after = cursor.unwrap_or_default();
        let limit = limit.max(1);
        // One read transaction: the clock, the machines and their history from one snapshot.
        let (now, rows) = self
            .db
            .read(move |c| {
                let now = now_ms(c)?;
                let machines = c
                    .prepare_cached(&format!(
                        "{SELECT_MACHINE} WHERE machine_id > ?1 ORDER BY machine_id LIMIT ?2"
                    ))?
                    .query_map(params![after, limit as i64], record_from_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let mut stmt = c.prepare_cached(
                    "SELECT tier, t, n, cpu_sum, cpu_max, mem_sum, load_sum, disk_max, rx, tx
                     FROM fleet_history WHERE machine_id = ?1 ORDER BY tier, t",
                )?;
                let mut rows = Vec::with_capacity(machines.len());
                for (id, json, meta) in machines {
                    let mut history: [Vec<Rollup>; 3] = Default::default();
                    let points = stmt
                        .query_map([&id], |r| Ok((r.get::<_, i64>(0)?, rollup_from_row(r, 1)?)))?;
                    for point in points {
                        let (tier, rollup) = point?;
                        if let Some(slot) = history.get_mut(tier as usize) {
                            slot.push(rollup);
                        }
                    }
                    rows.push((id, json, meta, history));
                }
                Ok((now, rows))
            })
            .await?;
        let next = (rows.len() == limit)
            .then(|| rows.last().map(|r| r.0.clone()))
            .flatten();
        let mut page = ExportPage {
            records: Vec::with_capacity(rows.len()),
            unreadable: Vec::new(),
            next,
        };
        for (machine_id, json, meta, mut history) in rows {
            match machine_record(&self.sealing, &machine_id, &json, meta) {
                Ok(record) => {
                    trim_history(&mut history, now);
                    page.records.push(MachineDump {
                        machine_id,
                        record,
                        history,
                    });
                }
                Err(p) => page.unreadable.push(p.message()),
            }
        }
        Ok(page)
    }

    async fn import_machines(&self, machines: Vec<MachineDump>) -> StoreResult<u64> {
        // Seal outside the write transaction: the lock is held only for the SQL.
        let mut sealed = Vec::with_capacity(machines.len());
        for m in machines {
            let json = self.sealing.seal_report(&m.machine_id, &m.record.report)?;
            let key = self.sealing.key_name(&m.record.api_key);
            let ts = m.record.report.measured_at();
            sealed.push((m, json, key, ts));
        }
        Ok(self
            .db
            .write(move |tx| {
                let now = now_ms(tx)?;
                for (m, json, key, ts) in &sealed {
                    let r = &m.record;
                    tx.prepare_cached(
                        "INSERT INTO fleet_machines
                             (machine_id, report, report_ts, first_seen, last_seen, api_key,
                              offline_since)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                         ON CONFLICT (machine_id) DO UPDATE SET
                             report = excluded.report, report_ts = excluded.report_ts,
                             first_seen = excluded.first_seen, last_seen = excluded.last_seen,
                             api_key = excluded.api_key, offline_since = excluded.offline_since
                         WHERE excluded.last_seen >= fleet_machines.last_seen",
                    )?
                    .execute(params![
                        m.machine_id,
                        json,
                        ts,
                        r.first_seen,
                        r.last_seen,
                        key,
                        r.offline_since
                    ])?;
                    for (i, tier) in TIERS.iter().enumerate() {
                        for p in &m.history[i] {
                            tx.prepare_cached(
                                "INSERT INTO fleet_history VALUES
                                     (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                                 ON CONFLICT (machine_id, tier, t) DO UPDATE SET
                                     n = excluded.n, cpu_sum = excluded.cpu_sum,
                                     cpu_max = excluded.cpu_max, mem_sum = excluded.mem_sum,
                                     load_sum = excluded.load_sum, disk_max = excluded.disk_max,
                                     rx = excluded.rx, tx = excluded.tx
                                 WHERE excluded.n >= fleet_history.n",
                            )?
                            .execute(params![
                                m.machine_id,
                                i as i64,
                                p.t,
                                p.n as i64,
                                p.cpu_sum,
                                p.cpu_max,
                                p.mem_sum,
                                p.load_sum,
                                p.disk_max,
                                p.rx,
                                p.tx
                            ])?;
                        }
                        trim_tier(tx, &m.machine_id, i, tier, now)?;
                    }
                }
                Ok(sealed.len() as u64)
            })
            .await?)
    }

    async fn import_key_usage(&self, usage: Vec<KeyUsage>) -> StoreResult<()> {
        let rows: Vec<(String, Millis)> = usage
            .iter()
            .map(|u| (self.sealing.key_name(&u.name), u.last_used))
            .collect();
        self.db
            .write(move |tx| {
                for (name, last_used) in &rows {
                    tx.prepare_cached(
                        "INSERT INTO fleet_api_keys (name, last_used) VALUES (?1, ?2)
                         ON CONFLICT (name) DO UPDATE SET
                             last_used = max(last_used, excluded.last_used)",
                    )?
                    .execute(params![name, last_used])?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }
}
