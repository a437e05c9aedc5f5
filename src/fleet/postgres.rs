//! The PostgreSQL fleet store: machines, their history tiers and API key usage in one
//! database shared by every node, for fleets larger than Redis's memory or that must keep
//! their history through a restart of the store.
//!
//! Schema (owned by this file, applied by `store::postgres::Pg` as store `fleet`):
//! - `fleet_machines`: one row per machine with its latest report (JSON, or a sealed
//!   envelope), timestamps on the database's clock and the id of the transaction that last
//!   wrote it. Index on `change_xid`: the index of every node (`fleet::index`) asks for
//!   "machines written since" on every read; index on `last_seen`: the leader's
//!   offline/forget passes ask for "silent since". Both are range scans.
//! - `fleet_history`: rollup rows keyed by (machine, tier, bucket start) holding sums, so a
//!   report merges in with one UPSERT; the primary key serves history reads and trimming.
//! - `fleet_api_keys`: last use of each API key (names as `Sealing` stores them).
//! - `fleet_counts`: the number of machines in 16 shard rows, kept by triggers on insert and
//!   delete, so the index's "did I miss a deletion" check sums 16 rows instead of counting
//!   the table, and enrolling machines do not all queue on one counter row.
//! - `fleet_record(…)`: a report recorded in one round trip and one transaction: range check
//!   on the database's clock, machine row, key usage, every tier merged and trimmed.
//!
//! With 100,000 machines the summary and the first page come from the node's in-memory index
//! (one `changed_since` read of the rows written since the previous read, by the
//! `change_xid` index, see `fleet::index`), not from a scan of the table.

use std::time::Duration;

use async_trait::async_trait;
use tokio_postgres::Row;

use super::{
    Changes, ExportPage, FleetStore, HistoryPoint, KeyUsage, MachineDump, MachineMeta,
    MachineRecord, Millis, Report, ResealCount, ResealProgress, Rollup, Sealing, Snapshot,
    StoreError, StoreResult, TIERS, Tier, machine_record, merge_key_usage, open_key_usage,
    sample_of, trim_history,
};
use crate::config::{BackendKind, StorageConfig};
use crate::fleet::report::MAX_CLOCK_SKEW_MS;
use crate::store::postgres::{Pg, PgError, PgErrorKind, PgSchema, WITH_NOW};

const SCHEMA: PgSchema = PgSchema {
    store: "fleet",
    migrations: &[r#"
CREATE TABLE fleet_machines (
    machine_id    TEXT PRIMARY KEY,
    report        TEXT NOT NULL,
    report_ts     BIGINT NOT NULL,
    first_seen    BIGINT NOT NULL,
    last_seen     BIGINT NOT NULL,
    api_key       TEXT NOT NULL,
    offline_since BIGINT,
    -- The transaction that last wrote the row (pg_current_xact_id): what `changed_since`
    -- follows, see there.
    change_xid    BIGINT NOT NULL
);
CREATE INDEX fleet_machines_last_seen ON fleet_machines (last_seen);
CREATE INDEX fleet_machines_change_xid ON fleet_machines (change_xid);
CREATE TABLE fleet_history (
    machine_id TEXT NOT NULL,
    tier       SMALLINT NOT NULL,
    t          BIGINT NOT NULL,
    n          BIGINT NOT NULL,
    cpu_sum    DOUBLE PRECISION NOT NULL,
    cpu_max    DOUBLE PRECISION NOT NULL,
    mem_sum    DOUBLE PRECISION NOT NULL,
    load_sum   DOUBLE PRECISION NOT NULL,
    disk_max   DOUBLE PRECISION NOT NULL,
    rx         DOUBLE PRECISION NOT NULL,
    tx         DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (machine_id, tier, t)
);
CREATE TABLE fleet_api_keys (
    name      TEXT PRIMARY KEY,
    last_used BIGINT NOT NULL
);
-- The machine count in 16 shards: a new machine's transaction locks one shard row until it
-- commits, so enrolling agents queue 16 ways, not on a single row.
CREATE TABLE fleet_counts (
    shard    INTEGER PRIMARY KEY,
    machines BIGINT NOT NULL
);
INSERT INTO fleet_counts SELECT s, 0 FROM generate_series(0, 15) AS s;

-- Row level on insert: fires only for machines that are new (an upsert that updates does
-- not), so a counter row is written once per new machine, not once per report.
CREATE FUNCTION fleet_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE fleet_counts SET machines = machines + 1 WHERE shard = hashtext(NEW.machine_id) & 15;
    RETURN NULL;
END $$;
CREATE TRIGGER fleet_machines_counted_insert AFTER INSERT ON fleet_machines
    FOR EACH ROW EXECUTE FUNCTION fleet_count_insert();
-- Statement level on delete: one counter write per forget pass (only the sum means anything).
CREATE FUNCTION fleet_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE fleet_counts SET machines = machines - (SELECT count(*) FROM gone) WHERE shard = 0;
    RETURN NULL;
END $$;
CREATE TRIGGER fleet_machines_counted_delete AFTER DELETE ON fleet_machines
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION fleet_count_delete();

-- One report. The tier parameters (bucket start, retention, max points per tier) come from
-- the caller, so `fleet::TIERS` stays the one definition of the tiers.
CREATE FUNCTION fleet_record(
    p_id TEXT, p_report TEXT, p_measured BIGINT, p_key TEXT,
    p_max_ahead BIGINT, p_max_behind BIGINT,
    p_bucket BIGINT[], p_retention BIGINT[], p_max_points INTEGER[],
    p_cpu DOUBLE PRECISION, p_mem DOUBLE PRECISION, p_load DOUBLE PRECISION,
    p_disk DOUBLE PRECISION, p_rx DOUBLE PRECISION, p_tx DOUBLE PRECISION,
    OUT recorded BOOLEAN, OUT at_ms BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    now_ms BIGINT := (extract(epoch from clock_timestamp()) * 1000)::bigint;
    i INTEGER;
BEGIN
    at_ms := now_ms;
    IF p_measured > now_ms + p_max_ahead OR p_measured < now_ms - p_max_behind THEN
        recorded := false;
        RETURN;
    END IF;
    INSERT INTO fleet_machines AS m
        (machine_id, report, report_ts, first_seen, last_seen, api_key, offline_since, change_xid)
    VALUES (p_id, p_report, p_measured, now_ms, now_ms, p_key, NULL,
            pg_current_xact_id()::text::bigint)
    ON CONFLICT (machine_id) DO UPDATE SET
        change_xid = excluded.change_xid,
        report = CASE WHEN excluded.report_ts >= m.report_ts THEN excluded.report ELSE m.report END,
        report_ts = GREATEST(m.report_ts, excluded.report_ts),
        last_seen = excluded.last_seen,
        api_key = excluded.api_key,
        offline_since = NULL;
    -- Key usage to the second: an UPDATE whose WHERE fails takes no row lock, so agents
    -- sharing one key do not queue on its row.
    UPDATE fleet_api_keys SET last_used = now_ms WHERE name = p_key AND last_used < now_ms - 1000;
    IF NOT FOUND THEN
        INSERT INTO fleet_api_keys (name, last_used) VALUES (p_key, now_ms)
        ON CONFLICT (name) DO NOTHING;
    END IF;
    FOR i IN 1 .. array_length(p_bucket, 1) LOOP
        IF p_measured >= now_ms - p_retention[i] THEN
            INSERT INTO fleet_history AS h
            VALUES (p_id, i - 1, p_bucket[i], 1, p_cpu, p_cpu, p_mem, p_load, p_disk, p_rx, p_tx)
            ON CONFLICT (machine_id, tier, t) DO UPDATE SET
                n = h.n + 1,
                cpu_sum = h.cpu_sum + excluded.cpu_sum,
                cpu_max = GREATEST(h.cpu_max, excluded.cpu_max),
                mem_sum = h.mem_sum + excluded.mem_sum,
                load_sum = h.load_sum + excluded.load_sum,
                disk_max = GREATEST(h.disk_max, excluded.disk_max),
                rx = GREATEST(h.rx, excluded.rx),
                tx = GREATEST(h.tx, excluded.tx);
        END IF;
        DELETE FROM fleet_history
        WHERE machine_id = p_id AND tier = i - 1 AND t < now_ms - p_retention[i];
        DELETE FROM fleet_history
        WHERE machine_id = p_id AND tier = i - 1 AND t <= (
            SELECT t FROM fleet_history WHERE machine_id = p_id AND tier = i - 1
            ORDER BY t DESC OFFSET p_max_points[i] LIMIT 1);
    END LOOP;
    recorded := true;
END $$;
"#],
};

const SELECT_MACHINE: &str = "machine_id, report, first_seen, last_seen, api_key, offline_since";

/// Machines whose history one statement of `export_machines` / `import_machines` carries: 50
/// full histories are ~160,000 rows, well inside the per-call deadline on a loaded host.
const HISTORY_SLICE: usize = 50;

/// Machines per re-sealing batch.
const RESEAL_BATCH: i64 = super::RESEAL_BATCH as i64;

pub struct PostgresFleetStore {
    pg: Pg,
    sealing: Sealing,
}

impl PostgresFleetStore {
    pub async fn open(config: &StorageConfig, sealing: Sealing) -> StoreResult<PostgresFleetStore> {
        Ok(PostgresFleetStore {
            pg: Pg::open(&config.postgres, "storage.postgres", SCHEMA).await?,
            sealing,
        })
    }

    /// Rows of `SELECT now, total, <SELECT_MACHINE>` (machine columns NULL on the one row of
    /// an empty result) into a clock, a count and decoded records.
    fn changes_from(&self, rows: Vec<Row>) -> Changes {
        let mut changes = Changes::default();
        for row in rows {
            changes.now = row.get(0);
            changes.total = row.get::<_, Option<i64>>(1).unwrap_or(0).max(0) as usize;
            let Some(id) = row.get::<_, Option<String>>(2) else {
                continue;
            };
            let (report, meta) = meta_from_row(&row, 2);
            match machine_record(&self.sealing, &id, &report, meta) {
                Ok(r) => changes.machines.push(r),
                Err(p) => changes.problems.push((id, p.message())),
            }
        }
        changes
    }
}

/// The report and columns of a machine row whose `SELECT_MACHINE` columns start at `at`.
fn meta_from_row(row: &Row, at: usize) -> (String, MachineMeta) {
    (
        row.get(at + 1),
        MachineMeta {
            first_seen: row.get(at + 2),
            last_seen: row.get(at + 3),
            api_key: row.get(at + 4),
            offline_since: row.get(at + 5),
        },
    )
}

impl From<PgError> for StoreError {
    fn from(e: PgError) -> StoreError {
        match e.kind {
            PgErrorKind::NewerSchema => StoreError::Corrupt {
                backend: BackendKind::Postgres,
                message: e.to_string(),
            },
            _ => StoreError::Unavailable {
                backend: BackendKind::Postgres,
                location: e.location,
                message: e.message,
            },
        }
    }
}

#[async_trait]
impl FleetStore for PostgresFleetStore {
    fn kind(&self) -> BackendKind {
        BackendKind::Postgres
    }

    fn location(&self) -> String {
        self.pg.location().to_string()
    }

    async fn now(&self) -> StoreResult<Millis> {
        Ok(self.pg.conn().await?.now_ms().await?)
    }

    async fn record(&self, report: &Report, api_key: &str) -> StoreResult<Millis> {
        let json = self.sealing.seal_report(&report.machine_id, report)?;
        let measured = report.measured_at();
        let s = sample_of(report, measured);
        let key = self.sealing.key_name(api_key);
        let buckets: Vec<i64> = TIERS.iter().map(|t| t.bucket_start(measured)).collect();
        let retention: Vec<i64> = TIERS.iter().map(|t| t.retention_ms).collect();
        let max_points: Vec<i32> = TIERS.iter().map(|t| t.max_points as i32).collect();
        let row = self
            .pg
            .conn()
            .await?
            .query_one(
                "SELECT recorded, at_ms FROM fleet_record($1, $2, $3, $4, $5, $6, $7, $8, $9,
                                                          $10, $11, $12, $13, $14, $15)",
                &[
                    &report.machine_id,
                    &json,
                    &measured,
                    &key,
                    &MAX_CLOCK_SKEW_MS,
                    &super::HISTORY_SPAN_MS,
                    &buckets,
                    &retention,
                    &max_points,
                    &s.cpu_percent,
                    &s.memory_percent,
                    &s.load1,
                    &s.disk_percent,
                    &s.rx_bytes,
                    &s.tx_bytes,
                ],
            )
            .await?;
        let (recorded, now): (bool, Millis) = (row.get(0), row.get(1));
        if recorded {
            Ok(now)
        } else {
            Err(StoreError::OutOfRange { now })
        }
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
        // Followed by transaction id, not by clock: every transaction older than the
        // statement snapshot's xmin has finished, so a row it wrote is visible now or never
        // will be. The next read asks for rows written by xmin or later: it sees what was
        // still in flight now, and re-reads only what changed during this one. (A clock would
        // need an overlap as long as the longest write, re-reading every machine that
        // reported in the last seconds on every read.) One statement: the clock, the count,
        // the position and the rows come from one snapshot.
        let head = format!(
            "{WITH_NOW}, s AS MATERIALIZED (
                 SELECT (SELECT sum(machines) FROM fleet_counts)::bigint AS total,
                        pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin)
             SELECT t.now, s.total, {SELECT_MACHINE}, s.xmin FROM t CROSS JOIN s"
        );
        let mut conn = self.pg.conn().await?;
        let rows = match since {
            None => {
                conn.query(&format!("{head} LEFT JOIN fleet_machines ON true"), &[])
                    .await?
            }
            Some(since) => {
                conn.query(
                    &format!("{head} LEFT JOIN fleet_machines ON change_xid >= $1"),
                    &[&since],
                )
                .await?
            }
        };
        let next_since = rows.first().map_or(0, |r| r.get::<_, i64>(8));
        let mut changes = self.changes_from(rows);
        changes.next_since = next_since;
        Ok(changes)
    }

    async fn machines_by_id(&self, machine_ids: &[String]) -> StoreResult<Snapshot> {
        let rows = self
            .pg
            .conn()
            .await?
            .query(
                &format!(
                    "{WITH_NOW} SELECT t.now, NULL::bigint, {SELECT_MACHINE}
                     FROM t LEFT JOIN fleet_machines ON machine_id = ANY($1)"
                ),
                &[&machine_ids],
            )
            .await?;
        let changes = self.changes_from(rows);
        // Callers index the result by id, in their own order.
        Ok(Snapshot {
            now: changes.now,
            machines: changes.machines,
            problems: changes.problems.into_iter().map(|(_, m)| m).collect(),
        })
    }

    async fn machine(&self, machine_id: &str) -> StoreResult<Option<MachineRecord>> {
        let row = self
            .pg
            .conn()
            .await?
            .query_opt(
                &format!("SELECT {SELECT_MACHINE} FROM fleet_machines WHERE machine_id = $1"),
                &[&machine_id],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let (report, meta) = meta_from_row(&row, 0);
        super::machine_or_absent(
            BackendKind::Postgres,
            machine_id,
            machine_record(&self.sealing, machine_id, &report, meta),
        )
    }

    async fn history(
        &self,
        machine_id: &str,
        tier: Tier,
        from: Millis,
        to: Millis,
    ) -> StoreResult<Vec<HistoryPoint>> {
        let tier = tier.index() as i16;
        let rows = self
            .pg
            .conn()
            .await?
            .query(
                "SELECT t, n, cpu_sum, cpu_max, mem_sum, load_sum, disk_max, rx, tx
                 FROM fleet_history WHERE machine_id = $1 AND tier = $2 AND t BETWEEN $3 AND $4
                 ORDER BY t",
                &[&machine_id, &tier, &from, &to],
            )
            .await?;
        Ok(rows.iter().map(|r| rollup_from_row(r, 0).point()).collect())
    }

    async fn history_len(&self, machine_id: &str) -> StoreResult<[usize; 3]> {
        let rows = self
            .pg
            .conn()
            .await?
            .query(
                "SELECT tier, count(*) FROM fleet_history WHERE machine_id = $1 GROUP BY tier",
                &[&machine_id],
            )
            .await?;
        let mut out = [0usize; 3];
        for row in rows {
            let (tier, n): (i16, i64) = (row.get(0), row.get(1));
            if let Some(slot) = out.get_mut(tier as usize) {
                *slot = n as usize;
            }
        }
        Ok(out)
    }

    async fn mark_offline(&self, silent_for: Duration) -> StoreResult<Vec<String>> {
        let silent = silent_for.as_millis() as i64;
        let rows = self
            .pg
            .conn()
            .await?
            .query(
                &format!(
                    "{WITH_NOW} UPDATE fleet_machines
                     SET offline_since = t.now, change_xid = pg_current_xact_id()::text::bigint
                     FROM t
                     WHERE last_seen < t.now - $1 AND offline_since IS NULL
                     RETURNING machine_id"
                ),
                &[&silent],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn forget(&self, silent_for: Duration) -> StoreResult<Vec<String>> {
        let silent = silent_for.as_millis() as i64;
        // One statement: the machines and their history go together.
        let rows = self
            .pg
            .conn()
            .await?
            .query(
                &format!(
                    "{WITH_NOW},
                     gone AS (DELETE FROM fleet_machines USING t WHERE last_seen < t.now - $1
                              RETURNING machine_id),
                     h AS (DELETE FROM fleet_history WHERE machine_id IN (SELECT machine_id FROM gone))
                     SELECT machine_id FROM gone"
                ),
                &[&silent],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn key_usage(&self) -> StoreResult<Vec<KeyUsage>> {
        let rows = self
            .pg
            .conn()
            .await?
            .query("SELECT name, last_used FROM fleet_api_keys", &[])
            .await?;
        Ok(merge_key_usage(
            &self.sealing,
            rows.iter().map(|r| (r.get(0), r.get(1))),
        ))
    }

    async fn reseal(&self, progress: ResealProgress<'_>) -> StoreResult<ResealCount> {
        let mut c = self.pg.conn().await?;
        let counts = c
            .query_one(
                "SELECT (SELECT count(*) FROM fleet_api_keys), (SELECT count(*) FROM fleet_machines)",
                &[],
            )
            .await?;
        let total = (counts.get::<_, i64>(0) + counts.get::<_, i64>(1)) as u64;
        progress(0, total);

        // Key usage entries: few (one per API key), one transaction.
        let mut count = ResealCount::default();
        c.begin().await?;
        let rows = c
            .query(
                "SELECT name, last_used FROM fleet_api_keys ORDER BY name FOR UPDATE",
                &[],
            )
            .await?;
        for row in &rows {
            let (stored, last_used): (String, Millis) = (row.get(0), row.get(1));
            count.examined += 1;
            if self.sealing.key_name_is_current(&stored) {
                continue;
            }
            let Ok(name) = self.sealing.open_key_name(&stored, "API key usage") else {
                count.unreadable += 1;
                continue;
            };
            c.execute("DELETE FROM fleet_api_keys WHERE name = $1", &[&stored])
                .await?;
            c.execute(
                "INSERT INTO fleet_api_keys (name, last_used) VALUES ($1, $2)
                 ON CONFLICT (name) DO UPDATE SET
                     last_used = GREATEST(fleet_api_keys.last_used, excluded.last_used)",
                &[&self.sealing.key_name(&name), &last_used],
            )
            .await?;
            count.resealed += 1;
        }
        c.commit().await?;
        progress(count.examined, total);

        // Machines: the report and the key name, in batches of one transaction each, rows
        // locked so a report recorded meanwhile waits and then writes its own sealed form.
        let mut after = String::new();
        loop {
            c.begin().await?;
            let rows = c
                .query(
                    "SELECT machine_id, report, api_key FROM fleet_machines WHERE machine_id > $1
                     ORDER BY machine_id LIMIT $2 FOR UPDATE",
                    &[&after, &RESEAL_BATCH],
                )
                .await?;
            let mut batch = ResealCount::default();
            for row in &rows {
                let (id, report, key): (String, String, String) =
                    (row.get(0), row.get(1), row.get(2));
                batch.examined += 1;
                let (new_report, new_key) = match self.sealing.reseal_machine(&id, &report, &key) {
                    Ok(None) => continue,
                    Ok(Some(new)) => new,
                    Err(()) => {
                        batch.unreadable += 1;
                        continue;
                    }
                };
                c.execute(
                    "UPDATE fleet_machines SET report = $2, api_key = $3 WHERE machine_id = $1",
                    &[&id, &new_report, &new_key],
                )
                .await?;
                batch.resealed += 1;
            }
            c.commit().await?;
            count.add(batch);
            progress(count.examined, total.max(count.examined));
            match rows.last() {
                Some(last) if batch.examined == RESEAL_BATCH as u64 => after = last.get(0),
                _ => return Ok(count),
            }
        }
    }

    async fn export_key_usage(&self) -> StoreResult<ExportPage<KeyUsage>> {
        let rows = self
            .pg
            .conn()
            .await?
            .query("SELECT name, last_used FROM fleet_api_keys", &[])
            .await?;
        let (records, unreadable) =
            open_key_usage(&self.sealing, rows.iter().map(|r| (r.get(0), r.get(1))));
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
        let limit = limit.max(1) as i64;
        let mut c = self.pg.conn().await?;
        // One snapshot for the clock, the machines and their history.
        c.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await?;
        let now = c.now_ms().await?;
        let machines = c
            .query(
                &format!(
                    "SELECT {SELECT_MACHINE} FROM fleet_machines WHERE machine_id > $1
                     ORDER BY machine_id LIMIT $2"
                ),
                &[&after, &limit],
            )
            .await?;
        let ids: Vec<String> = machines.iter().map(|r| r.get(0)).collect();
        // History in slices of machines, so no single statement carries a whole batch's
        // points (a full-history batch of 500 is 1.5 M rows) past the per-call deadline.
        let mut points = Vec::new();
        for slice in ids.chunks(HISTORY_SLICE) {
            points.extend(
                c.query(
                    "SELECT machine_id, tier, t, n, cpu_sum, cpu_max, mem_sum, load_sum, disk_max, rx, tx
                     FROM fleet_history WHERE machine_id = ANY($1) ORDER BY machine_id, tier, t",
                    &[&slice],
                )
                .await?,
            );
        }
        c.commit().await?;
        let mut history: std::collections::HashMap<String, [Vec<Rollup>; 3]> =
            std::collections::HashMap::with_capacity(ids.len());
        for p in &points {
            let tier: i16 = p.get(1);
            if let Some(slot) = history.entry(p.get(0)).or_default().get_mut(tier as usize) {
                slot.push(rollup_from_row(p, 2));
            }
        }
        let next = (machines.len() as i64 == limit)
            .then(|| ids.last().cloned())
            .flatten();
        let mut page = ExportPage {
            records: Vec::with_capacity(machines.len()),
            unreadable: Vec::new(),
            next,
        };
        for row in &machines {
            let machine_id: String = row.get(0);
            let (report, meta) = meta_from_row(row, 0);
            match machine_record(&self.sealing, &machine_id, &report, meta) {
                Ok(record) => {
                    let mut h = history.remove(&machine_id).unwrap_or_default();
                    trim_history(&mut h, now);
                    page.records.push(MachineDump {
                        machine_id,
                        record,
                        history: h,
                    });
                }
                Err(p) => page.unreadable.push(p.message()),
            }
        }
        Ok(page)
    }

    async fn import_machines(&self, machines: Vec<MachineDump>) -> StoreResult<u64> {
        // Three statements in one transaction, whatever the batch size: the machines, every
        // history point, then each tier trimmed to its bounds (as `record` leaves it).
        let mut m: (
            Vec<String>,
            Vec<String>,
            Vec<i64>,
            Vec<i64>,
            Vec<i64>,
            Vec<String>,
            Vec<Option<i64>>,
        ) = Default::default();
        let mut h: (Vec<String>, Vec<i16>, Vec<i64>, Vec<i64>, [Vec<f64>; 7]) = Default::default();
        for d in &machines {
            let r = &d.record;
            m.0.push(d.machine_id.clone());
            m.1.push(self.sealing.seal_report(&d.machine_id, &r.report)?);
            m.2.push(r.report.measured_at());
            m.3.push(r.first_seen);
            m.4.push(r.last_seen);
            m.5.push(self.sealing.key_name(&r.api_key));
            m.6.push(r.offline_since);
            for (tier, points) in d.history.iter().enumerate() {
                for p in points {
                    h.0.push(d.machine_id.clone());
                    h.1.push(tier as i16);
                    h.2.push(p.t);
                    h.3.push(p.n as i64);
                    for (col, v) in h.4.iter_mut().zip([
                        p.cpu_sum, p.cpu_max, p.mem_sum, p.load_sum, p.disk_max, p.rx, p.tx,
                    ]) {
                        col.push(v);
                    }
                }
            }
        }
        let retention: Vec<i64> = TIERS.iter().map(|t| t.retention_ms).collect();
        let max_points: Vec<i64> = TIERS.iter().map(|t| t.max_points as i64).collect();
        let mut c = self.pg.conn().await?;
        c.begin().await?;
        c.execute(
            "INSERT INTO fleet_machines AS fm
                 (machine_id, report, report_ts, first_seen, last_seen, api_key, offline_since,
                  change_xid)
             SELECT u.*, pg_current_xact_id()::text::bigint
             FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[],
                         $6::text[], $7::bigint[]) AS u
             ON CONFLICT (machine_id) DO UPDATE SET
                 report = excluded.report, report_ts = excluded.report_ts,
                 first_seen = excluded.first_seen, last_seen = excluded.last_seen,
                 api_key = excluded.api_key, offline_since = excluded.offline_since,
                 change_xid = excluded.change_xid
             WHERE excluded.last_seen >= fm.last_seen",
            &[&m.0, &m.1, &m.2, &m.3, &m.4, &m.5, &m.6],
        )
        .await?;
        // The points in slices, each one statement inside the transaction, so none runs
        // past the per-call deadline however much history a batch carries.
        let mut at = 0;
        while at < h.0.len() {
            let end = (at + HISTORY_SLICE * 3_000).min(h.0.len());
            let cols = (
                &h.0[at..end],
                &h.1[at..end],
                &h.2[at..end],
                &h.3[at..end],
                h.4.each_ref().map(|c| &c[at..end]),
            );
            c.execute(
                "INSERT INTO fleet_history AS fh
                 SELECT * FROM unnest($1::text[], $2::smallint[], $3::bigint[], $4::bigint[],
                                      $5::float8[], $6::float8[], $7::float8[], $8::float8[],
                                      $9::float8[], $10::float8[], $11::float8[])
                 ON CONFLICT (machine_id, tier, t) DO UPDATE SET
                     n = excluded.n, cpu_sum = excluded.cpu_sum, cpu_max = excluded.cpu_max,
                     mem_sum = excluded.mem_sum, load_sum = excluded.load_sum,
                     disk_max = excluded.disk_max, rx = excluded.rx, tx = excluded.tx
                 WHERE excluded.n >= fh.n",
                &[
                    &cols.0, &cols.1, &cols.2, &cols.3, &cols.4[0], &cols.4[1], &cols.4[2],
                    &cols.4[3], &cols.4[4], &cols.4[5], &cols.4[6],
                ],
            )
            .await?;
            at = end;
        }
        for slice in m.0.chunks(HISTORY_SLICE) {
            c.execute(
                &format!(
                    "{WITH_NOW},
                     ranked AS (SELECT machine_id, tier, t,
                                       row_number() OVER (PARTITION BY machine_id, tier ORDER BY t DESC) AS rank
                                FROM fleet_history WHERE machine_id = ANY($1))
                     DELETE FROM fleet_history fh USING ranked r, t
                     WHERE fh.machine_id = r.machine_id AND fh.tier = r.tier AND fh.t = r.t
                       AND (r.rank > ($3::bigint[])[r.tier + 1]
                            OR r.t < t.now - ($2::bigint[])[r.tier + 1])"
                ),
                &[&slice, &retention, &max_points],
            )
            .await?;
        }
        c.commit().await?;
        Ok(machines.len() as u64)
    }

    async fn import_key_usage(&self, usage: Vec<KeyUsage>) -> StoreResult<()> {
        let names: Vec<String> = usage
            .iter()
            .map(|u| self.sealing.key_name(&u.name))
            .collect();
        let used: Vec<i64> = usage.iter().map(|u| u.last_used).collect();
        self.pg
            .conn()
            .await?
            .execute(
                "INSERT INTO fleet_api_keys AS k (name, last_used)
                 SELECT * FROM unnest($1::text[], $2::bigint[])
                 ON CONFLICT (name) DO UPDATE SET
                     last_used = GREATEST(k.last_used, excluded.last_used)",
                &[&names, &used],
            )
            .await?;
        Ok(())
    }
}

/// The rollup whose columns (`t, n, cpu_sum, …, tx`) start at `at`.
fn rollup_from_row(r: &Row, at: usize) -> Rollup {
    Rollup {
        t: r.get(at),
        n: r.get::<_, i64>(at + 1).max(0) as u64,
        cpu_sum: r.get(at + 2),
        cpu_max: r.get(at + 3),
        mem_sum: r.get(at + 4),
        load_sum: r.get(at + 5),
        disk_max: r.get(at + 6),
        rx: r.get(at + 7),
        tx: r.get(at + 8),
    }
}
