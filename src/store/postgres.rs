//! One PostgreSQL database as every PostgreSQL store (cluster registry, sessions, fleet data)
//! uses it: [`Pg::open`] with the store's [`PgSchema`], [`Pg::conn`] for a pooled connection
//! whose every call has a deadline, and one error type, [`PgError`], that each store maps into
//! its own error in one place.
//!
//! Driver: tokio-postgres with deadpool-postgres. Chosen over sqlx because the stores need
//! nothing sqlx adds (compile-time checked queries want a database at build time, which CI
//! does not have before the tests start one), while tokio-postgres pipelines the statements of
//! concurrent tasks on one connection, prepares each statement once per connection
//! (deadpool's statement cache) and is the driver deadpool, refinery and most of the ecosystem
//! build on. TLS goes through tokio-postgres-rustls on the crate's one rustls build.
//!
//! Deadlines: a query on a connection whose peer vanished (a partition, a killed server
//! without a RST) would otherwise wait for TCP to give up, minutes later. Every call here is
//! bounded by [`CALL_TIMEOUT`]; a connection that timed out or failed at the transport level is
//! closed instead of going back to the pool, and a connection dropped inside a transaction is
//! closed too (the server rolls the transaction back), so the pool never hands out a broken or
//! half-done connection.
//!
//! Schema: each store passes its list of migrations; [`Pg::open`] applies the missing ones in
//! one transaction under a transaction-scoped advisory lock, so three nodes starting at once
//! migrate once and the other two wait, then see the new version. A database whose version for
//! a store is newer than this fleetctl knows is refused. When the database is unreachable at
//! start-up the handle still opens (a node may start while PostgreSQL is down and answers 503
//! until it returns); the migrations then run before the first call that reaches it.
//!
//! Time: [`NOW_MS`] is the database's clock, read inside the statement that uses it.

macro_rules! now_ms_sql {
    () => {
        "(extract(epoch from clock_timestamp()) * 1000)::bigint"
    };
}

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::Row;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::types::ToSql;

use crate::config::{PgSslMode, PostgresConfig};

/// Longest a connection attempt, a wait for a free pooled connection, or one statement may
/// take before the call fails as unavailable.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What the server enforces on every statement (`statement_timeout`): a little longer than
/// the client waits, so nothing keeps running (holding row locks) after the caller was told
/// it failed.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(6);

/// The database's clock in milliseconds since the epoch, as an SQL expression.
/// `clock_timestamp()`, not `now()`: `now()` is the start of the transaction, and a heartbeat
/// must carry the time it was written.
pub const NOW_MS: &str = now_ms_sql!();

/// `WITH t AS MATERIALIZED (SELECT <now> AS now)`: the clock read once for a whole statement
/// (`clock_timestamp()` is volatile, so it would otherwise be read once per row); the
/// statement goes on with `, other AS (…)` or its `SELECT`/`INSERT`/`UPDATE`, using `t.now`.
pub const WITH_NOW: &str = concat!("WITH t AS MATERIALIZED (SELECT ", now_ms_sql!(), " AS now)");

/// One advisory lock key for every store's migrations (`hashtext` of this name).
const MIGRATION_LOCK: &str = "fleetctl schema migrations";

/// What a store keeps in the database: its name in `fleetctl_schema` and its migrations, in
/// order. Migration `i` (0-based) brings the store to version `i + 1`; a released migration is
/// never edited, only followed by a new one.
#[derive(Debug, Clone, Copy)]
pub struct PgSchema {
    pub store: &'static str,
    pub migrations: &'static [&'static str],
}

impl PgSchema {
    pub fn version(&self) -> i32 {
        self.migrations.len() as i32
    }
}

/// Why a database call failed. Each store turns it into its own error with one `From`.
#[derive(Debug, thiserror::Error)]
#[error("{location}: {message}")]
pub struct PgError {
    /// `postgres://user@host:port/dbname`, never with a password.
    pub location: String,
    pub kind: PgErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PgErrorKind {
    /// Unreachable, timed out, refused the login, shutting down: retry later.
    Unavailable,
    /// The database holds a schema from a newer fleetctl.
    NewerSchema,
    /// A statement failed for another reason (a bug, or a table altered by hand).
    Other,
}

pub type PgResult<T> = Result<T, PgError>;

/// A pool of connections to one database, with its store's schema applied. Cheap to clone.
#[derive(Clone)]
pub struct Pg {
    pool: Pool,
    location: String,
    schema: PgSchema,
    /// Set once the migrations ran (or were found applied) on this handle.
    migrated: Arc<tokio::sync::OnceCell<()>>,
}

/// What `config validate` needs to know about a `url`.
#[derive(Debug, Default)]
pub struct ParsedUrl {
    pub has_password: bool,
    pub has_sslmode: bool,
    /// The first host (a TCP host name, or a socket directory starting with `/`).
    pub host: Option<String>,
}

/// Parse a `url` key as tokio-postgres will, for `config validate`.
pub fn parse_url(url: &str) -> Result<ParsedUrl, String> {
    let cfg = tokio_postgres::Config::from_str(url)
        .map_err(|e| format!("not a PostgreSQL connection URL: {e}"))?;
    Ok(ParsedUrl {
        has_password: cfg.get_password().is_some(),
        has_sslmode: url.contains("sslmode"),
        host: cfg.get_hosts().first().map(|h| match h {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        }),
    })
}

/// The driver's config for one `postgres:` section: the URL or the separate keys, the
/// password, and the limits every connection gets.
fn driver_config(cfg: &PostgresConfig, section: &str) -> Result<tokio_postgres::Config, String> {
    let mut pg = match &cfg.url {
        Some(url) => tokio_postgres::Config::from_str(url)
            .map_err(|e| format!("{section}.url is not a PostgreSQL connection URL: {e}"))?,
        None => {
            let mut pg = tokio_postgres::Config::new();
            pg.host(&cfg.host)
                .port(cfg.port)
                .dbname(&cfg.dbname)
                .user(&cfg.user);
            pg
        }
    };
    if let Some(password) = &cfg.password {
        pg.password(password.as_bytes());
    }
    pg.application_name("fleetctl")
        .connect_timeout(CALL_TIMEOUT)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(10))
        .options(format!(
            "-c statement_timeout={}",
            STATEMENT_TIMEOUT.as_millis()
        ))
        .ssl_mode(match cfg.sslmode {
            PgSslMode::Disable => SslMode::Disable,
            PgSslMode::VerifyFull => SslMode::Require,
        });
    Ok(pg)
}

/// `postgres://user@host:port/dbname` for messages.
fn location_of(pg: &tokio_postgres::Config) -> String {
    let host = match pg.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        pg.get_user().unwrap_or(""),
        pg.get_dbname().unwrap_or("")
    )
}

/// Which database a `postgres:` section names (`postgres 127.0.0.1:5432/fleetctl`), so two
/// configs naming the same one are recognised (`fleetctl migrate`).
pub fn identity(cfg: &PostgresConfig) -> String {
    match driver_config(cfg, "postgres") {
        Ok(pg) => {
            let host = match pg.get_hosts().first() {
                Some(Host::Tcp(h)) if h == "localhost" || h == "::1" => "127.0.0.1".to_string(),
                Some(Host::Tcp(h)) => h.clone(),
                Some(Host::Unix(p)) => p.display().to_string(),
                None => "127.0.0.1".into(),
            };
            let port = pg.get_ports().first().copied().unwrap_or(5432);
            format!("postgres {host}:{port}/{}", pg.get_dbname().unwrap_or(""))
        }
        Err(e) => format!("postgres ({e})"),
    }
}

/// rustls for `sslmode: verify-full`: the chain must lead to `ca_file` (or a system root) and
/// the certificate must name the host.
fn tls_connector(
    cfg: &PostgresConfig,
    section: &str,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    super::ensure_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    match &cfg.ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("cannot read {section}.ca_file {}: {e}", path.display()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{section}.ca_file {}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "{section}.ca_file {} holds no PEM certificate",
                    path.display()
                ));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| format!("{section}.ca_file {}: {e}", path.display()))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

impl Pg {
    /// A pool for the `postgres:` section called `section` (for messages), bringing the
    /// database to `schema` now if it is reachable, else before the first call that reaches it.
    /// Fails only for a config that cannot work (bad URL, unreadable CA file) or a database
    /// from a newer fleetctl.
    pub async fn open(cfg: &PostgresConfig, section: &str, schema: PgSchema) -> PgResult<Pg> {
        let config_error = |message: String| PgError {
            location: section.to_string(),
            kind: PgErrorKind::Other,
            message,
        };
        let pg = driver_config(cfg, section).map_err(config_error)?;
        let location = location_of(&pg);
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match cfg.sslmode {
            PgSslMode::Disable => Manager::from_config(pg, tokio_postgres::NoTls, manager_config),
            PgSslMode::VerifyFull => Manager::from_config(
                pg,
                tls_connector(cfg, section).map_err(config_error)?,
                manager_config,
            ),
        };
        let pool = Pool::builder(manager)
            .max_size(cfg.pool_size.max(1) as usize)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CALL_TIMEOUT))
            .create_timeout(Some(CALL_TIMEOUT))
            .recycle_timeout(Some(CALL_TIMEOUT))
            .build()
            .map_err(|e| config_error(format!("cannot build the connection pool: {e}")))?;
        let db = Pg {
            pool,
            location,
            schema,
            migrated: Arc::new(tokio::sync::OnceCell::new()),
        };
        match db.ensure_schema().await {
            Ok(()) => Ok(db),
            Err(e) if e.kind == PgErrorKind::Unavailable => {
                tracing::warn!(
                    "{e}; starting anyway, the {} store migrates when the database answers",
                    schema.store
                );
                Ok(db)
            }
            Err(e) => Err(e),
        }
    }

    /// `postgres://user@host:port/dbname`.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// A pooled connection, once the schema is in place.
    pub async fn conn(&self) -> PgResult<PgConn<'_>> {
        self.ensure_schema().await?;
        self.raw_conn().await
    }

    async fn raw_conn(&self) -> PgResult<PgConn<'_>> {
        match self.pool.get().await {
            Ok(obj) => Ok(PgConn {
                pg: self,
                obj: Some(obj),
                in_tx: false,
            }),
            Err(e) => Err(self.unavailable(pool_error_message(e))),
        }
    }

    fn unavailable(&self, message: String) -> PgError {
        PgError {
            location: self.location.clone(),
            kind: PgErrorKind::Unavailable,
            message,
        }
    }

    async fn ensure_schema(&self) -> PgResult<()> {
        self.migrated
            .get_or_try_init(|| async {
                let mut c = self.raw_conn().await?;
                migrate(&mut c, self.schema).await
            })
            .await
            .map(|_| ())
    }
}

fn pool_error_message(e: deadpool_postgres::PoolError) -> String {
    use deadpool_postgres::PoolError;
    match e {
        PoolError::Timeout(_) => format!(
            "no connection within {CALL_TIMEOUT:?} (database unreachable, or every pooled connection busy)"
        ),
        PoolError::Backend(e) => describe(&e),
        other => other.to_string(),
    }
}

/// The driver's error with its cause chain (tokio-postgres puts the useful part, such as
/// "password authentication failed", in the source).
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

/// Whether an error means "the database is not usable right now" rather than "this statement
/// is wrong": no SQLSTATE at all (transport), or a connection, resource, shutdown,
/// cancellation or serialization class.
fn is_transient(e: &tokio_postgres::Error) -> bool {
    match e.code() {
        None => true,
        Some(code) => {
            let c = code.code();
            c.starts_with("08")
                || c.starts_with("53")
                || c.starts_with("57")
                || c.starts_with("40")
                || c.starts_with("28")
        }
    }
}

/// One pooled connection. Every call has the [`CALL_TIMEOUT`] deadline; a connection that
/// failed at the transport level, timed out, or is dropped inside a transaction is closed
/// rather than returned to the pool.
pub struct PgConn<'a> {
    pg: &'a Pg,
    obj: Option<Object>,
    in_tx: bool,
}

impl Drop for PgConn<'_> {
    fn drop(&mut self) {
        if self.in_tx
            && let Some(obj) = self.obj.take()
        {
            // Closing the connection makes the server roll the transaction back.
            drop(Object::take(obj));
        }
    }
}

impl PgConn<'_> {
    fn client(&self) -> PgResult<&Object> {
        self.obj.as_ref().ok_or_else(|| {
            self.pg
                .unavailable("the connection was closed after an error".into())
        })
    }

    /// Map a driver error, closing the connection when it is not reusable.
    fn fail(&mut self, e: tokio_postgres::Error) -> PgError {
        let transient = is_transient(&e);
        if transient && let Some(obj) = self.obj.take() {
            drop(Object::take(obj));
        }
        PgError {
            location: self.pg.location.clone(),
            kind: if transient {
                PgErrorKind::Unavailable
            } else {
                PgErrorKind::Other
            },
            message: describe(&e),
        }
    }

    /// The result of one call run under [`CALL_TIMEOUT`]: a driver error or a missed deadline
    /// becomes a [`PgError`], closing the connection when it is not reusable.
    fn settle<T>(
        &mut self,
        outcome: Result<Result<T, tokio_postgres::Error>, tokio::time::error::Elapsed>,
    ) -> PgResult<T> {
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.fail(e)),
            Err(_) => Err(self.timed_out()),
        }
    }

    fn timed_out(&mut self) -> PgError {
        if let Some(obj) = self.obj.take() {
            drop(Object::take(obj));
        }
        self.pg
            .unavailable(format!("no answer within {CALL_TIMEOUT:?}"))
    }

    /// Run `sql` (prepared once per connection) and return its rows.
    pub async fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> PgResult<Vec<Row>> {
        let client = self.client()?;
        let work = async {
            let stmt = client.prepare_cached(sql).await?;
            client.query(&stmt, params).await
        };
        let outcome = tokio::time::timeout(CALL_TIMEOUT, work).await;
        self.settle(outcome)
    }

    /// The one row `sql` returns, or `None`.
    pub async fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> PgResult<Option<Row>> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    /// The one row `sql` must return.
    pub async fn query_one(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> PgResult<Row> {
        self.query_opt(sql, params).await?.ok_or_else(|| PgError {
            location: self.pg.location.clone(),
            kind: PgErrorKind::Other,
            message: format!("no row from `{}`", first_line(sql)),
        })
    }

    /// Run `sql` and return how many rows it changed.
    pub async fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> PgResult<u64> {
        let client = self.client()?;
        let work = async {
            let stmt = client.prepare_cached(sql).await?;
            client.execute(&stmt, params).await
        };
        let outcome = tokio::time::timeout(CALL_TIMEOUT, work).await;
        self.settle(outcome)
    }

    /// Run statements without parameters (no preparing), e.g. `BEGIN`.
    pub async fn batch(&mut self, sql: &str) -> PgResult<()> {
        let client = self.client()?;
        let outcome = tokio::time::timeout(CALL_TIMEOUT, client.batch_execute(sql)).await;
        self.settle(outcome)
    }

    /// Start a transaction; [`PgConn::commit`] ends it. Dropping the connection without
    /// committing (an error on the way) rolls it back.
    pub async fn begin(&mut self) -> PgResult<()> {
        self.begin_with("BEGIN").await
    }

    /// Start a transaction with its own `BEGIN …` (an isolation level, `READ ONLY`).
    pub async fn begin_with(&mut self, begin: &str) -> PgResult<()> {
        self.in_tx = true;
        self.batch(begin).await
    }

    pub async fn commit(&mut self) -> PgResult<()> {
        self.batch("COMMIT").await?;
        self.in_tx = false;
        Ok(())
    }

    /// The database's clock.
    pub async fn now_ms(&mut self) -> PgResult<i64> {
        Ok(self
            .query_one(&format!("SELECT {NOW_MS}"), &[])
            .await?
            .get(0))
    }
}

fn first_line(sql: &str) -> &str {
    sql.trim().lines().next().unwrap_or("")
}

/// Bring `schema.store` to `schema.version()` under the advisory lock, in one transaction.
async fn migrate(c: &mut PgConn<'_>, schema: PgSchema) -> PgResult<()> {
    c.begin().await?;
    c.query(
        "SELECT pg_advisory_xact_lock(hashtext($1)::bigint)",
        &[&MIGRATION_LOCK],
    )
    .await?;
    c.batch(
        "CREATE TABLE IF NOT EXISTS fleetctl_schema (
             store      TEXT PRIMARY KEY,
             version    INTEGER NOT NULL
         );
         CREATE TABLE IF NOT EXISTS fleetctl_schema_history (
             store      TEXT NOT NULL,
             version    INTEGER NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
             PRIMARY KEY (store, version)
         );",
    )
    .await?;
    let found: i32 = c
        .query_opt(
            "SELECT version FROM fleetctl_schema WHERE store = $1",
            &[&schema.store],
        )
        .await?
        .map(|r| r.get(0))
        .unwrap_or(0);
    if found > schema.version() {
        return Err(PgError {
            location: c.pg.location.clone(),
            kind: PgErrorKind::NewerSchema,
            message: format!(
                "the {} tables are at schema version {found}, written by a newer fleetctl (this one knows {}); upgrade fleetctl",
                schema.store,
                schema.version()
            ),
        });
    }
    for (i, sql) in schema.migrations.iter().enumerate().skip(found as usize) {
        let version = i as i32 + 1;
        c.batch(sql).await?;
        c.execute(
            "INSERT INTO fleetctl_schema_history (store, version) VALUES ($1, $2)",
            &[&schema.store, &version],
        )
        .await?;
        tracing::info!(
            store = schema.store,
            version,
            "applied PostgreSQL migration"
        );
    }
    c.execute(
        "INSERT INTO fleetctl_schema (store, version) VALUES ($1, $2)
         ON CONFLICT (store) DO UPDATE SET version = excluded.version",
        &[&schema.store, &schema.version()],
    )
    .await?;
    c.commit().await
}
