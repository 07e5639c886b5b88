//! The agent's state in SQLite (`<state dir>/berth.db`, WAL): task definitions with their
//! revisions, and tasks with their history. Schema changes are numbered migrations, applied
//! in order and recorded in `PRAGMA user_version`.

mod schedules;
mod services;

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state database {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("state database: stored record {0} is unreadable: {1}")]
    Corrupt(String, serde_json::Error),
}

pub use schedules::StoredSchedule;

pub type Result<T> = std::result::Result<T, StoreError>;

/// Each entry moves the schema one version up; never edit one that has shipped.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE task_definitions (
        family TEXT NOT NULL,
        revision INTEGER NOT NULL,
        status TEXT NOT NULL,
        registered_at REAL NOT NULL,
        deregistered_at REAL,
        body TEXT NOT NULL,
        PRIMARY KEY (family, revision)
    );
    CREATE TABLE tasks (
        id TEXT PRIMARY KEY,
        family TEXT NOT NULL,
        revision INTEGER NOT NULL,
        started_by TEXT,
        service TEXT,
        desired_status TEXT NOT NULL,
        last_status TEXT NOT NULL,
        created_at REAL NOT NULL,
        stopped_at REAL,
        body TEXT NOT NULL
    );
    CREATE INDEX tasks_by_status ON tasks (desired_status, last_status);
    CREATE INDEX tasks_by_family ON tasks (family);",
    // Services (the ECS service document with its deployments and events as the body)
    // and schedules (the schedule as the body; last_fired_at is what a restarted agent
    // reads to fire a missed slot once).
    "CREATE TABLE services (
        name TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        created_at REAL NOT NULL,
        body TEXT NOT NULL
    );
    CREATE TABLE schedules (
        name TEXT PRIMARY KEY,
        enabled INTEGER NOT NULL,
        created_at REAL NOT NULL,
        last_fired_at REAL,
        body TEXT NOT NULL
    );
    CREATE INDEX tasks_by_service ON tasks (service);",
];

/// A registered revision of a task definition, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTaskDefinition {
    pub family: String,
    pub revision: u32,
    pub status: String,
    pub registered_at: f64,
    pub deregistered_at: Option<f64>,
    /// The definition as registered (ECS JSON, without read-only fields).
    pub body: serde_json::Value,
}

pub struct Store {
    conn: Connection,
}

impl Store {
    pub fn open(path: &Path) -> Result<Store> {
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        // First, so that the pragmas below wait for another process's lock too.
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(open_err)?;
        use_wal(&conn).map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        let mut store = Store { conn };
        store.migrate()?;
        Ok(store)
    }

    pub fn open_in_memory() -> Result<Store> {
        let mut store = Store {
            conn: Connection::open_in_memory()?,
        };
        store.migrate()?;
        Ok(store)
    }

    /// Brings the schema up to date. The version is read inside the write transaction, so
    /// two processes opening a new state dir at once migrate it once.
    fn migrate(&mut self) -> Result<()> {
        let tx = self.write()?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let version = usize::try_from(version).unwrap_or(0);
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A transaction that reads and then writes. It takes the write lock at once
    /// (IMMEDIATE), waiting for it up to the busy timeout: a deferred one that read first
    /// would fail at once with "database is locked" when another process (a `berth run`
    /// beside the agent) wrote in between, since its snapshot is then stale.
    fn write(&mut self) -> Result<rusqlite::Transaction<'_>> {
        Ok(self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?)
    }

    pub fn schema_version(&self) -> Result<usize> {
        let v: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        Ok(usize::try_from(v).unwrap_or(0))
    }

    /// Stores `body` as the next revision of `family` and returns it.
    pub fn register_task_definition(
        &mut self,
        family: &str,
        body: &serde_json::Value,
        now: f64,
    ) -> Result<StoredTaskDefinition> {
        let tx = self.write()?;
        let last: Option<u32> = tx.query_row(
            "SELECT MAX(revision) FROM task_definitions WHERE family = ?1",
            [family],
            |r| r.get(0),
        )?;
        let revision = last.unwrap_or(0) + 1;
        tx.execute(
            "INSERT INTO task_definitions (family, revision, status, registered_at, body)
             VALUES (?1, ?2, 'ACTIVE', ?3, ?4)",
            params![family, revision, now, body.to_string()],
        )?;
        tx.commit()?;
        Ok(StoredTaskDefinition {
            family: family.to_string(),
            revision,
            status: "ACTIVE".into(),
            registered_at: now,
            deregistered_at: None,
            body: body.clone(),
        })
    }

    /// A revision, or with `revision` None the latest ACTIVE one, as ECS resolves a bare
    /// family name.
    pub fn task_definition(
        &self,
        family: &str,
        revision: Option<u32>,
    ) -> Result<Option<StoredTaskDefinition>> {
        let row = match revision {
            Some(rev) => self
                .conn
                .query_row(
                    "SELECT family, revision, status, registered_at, deregistered_at, body
                     FROM task_definitions WHERE family = ?1 AND revision = ?2",
                    params![family, rev],
                    read_definition,
                )
                .optional()?,
            None => self
                .conn
                .query_row(
                    "SELECT family, revision, status, registered_at, deregistered_at, body
                     FROM task_definitions WHERE family = ?1 AND status = 'ACTIVE'
                     ORDER BY revision DESC LIMIT 1",
                    params![family],
                    read_definition,
                )
                .optional()?,
        };
        row.map(finish_definition).transpose()
    }

    /// (family, revision) of every definition, optionally one family's, in order.
    pub fn list_task_definitions(
        &self,
        family: Option<&str>,
        status: Option<&str>,
    ) -> Result<Vec<(String, u32)>> {
        let mut stmt = self.conn.prepare(
            "SELECT family, revision FROM task_definitions
             WHERE (?1 IS NULL OR family = ?1) AND (?2 IS NULL OR status = ?2)
             ORDER BY family, revision",
        )?;
        let rows = stmt.query_map(params![family, status], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Family names, those with at least one revision in `status` when given.
    pub fn list_families(&self, prefix: Option<&str>, status: Option<&str>) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare(
            "SELECT DISTINCT family FROM task_definitions
             WHERE (?1 IS NULL OR substr(family, 1, length(?1)) = ?1)
               AND (?2 IS NULL OR status = ?2)
             ORDER BY family",
        )?;
        let rows = stmt.query_map(params![prefix, status], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Marks a revision INACTIVE; running tasks keep running.
    pub fn deregister_task_definition(
        &mut self,
        family: &str,
        revision: u32,
        now: f64,
    ) -> Result<Option<StoredTaskDefinition>> {
        let n = self.conn.execute(
            "UPDATE task_definitions SET status = 'INACTIVE', deregistered_at = ?3
             WHERE family = ?1 AND revision = ?2 AND status = 'ACTIVE'",
            params![family, revision, now],
        )?;
        if n == 0 {
            return self.task_definition(family, Some(revision));
        }
        self.task_definition(family, Some(revision))
    }

    pub fn put_task<T: Serialize + TaskRow>(&mut self, task: &T) -> Result<()> {
        let body =
            serde_json::to_string(task).map_err(|e| StoreError::Corrupt(task.id().into(), e))?;
        self.conn.execute(
            "INSERT INTO tasks (id, family, revision, started_by, service, desired_status,
                                last_status, created_at, stopped_at, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (id) DO UPDATE SET
                desired_status = excluded.desired_status, last_status = excluded.last_status,
                stopped_at = excluded.stopped_at, body = excluded.body",
            params![
                task.id(),
                task.family(),
                task.revision(),
                task.started_by(),
                task.service(),
                task.desired_status(),
                task.last_status(),
                task.created_at(),
                task.stopped_at(),
                body
            ],
        )?;
        Ok(())
    }

    pub fn task<T: for<'de> Deserialize<'de>>(&self, id: &str) -> Result<Option<T>> {
        let body: Option<String> = self
            .conn
            .query_row("SELECT body FROM tasks WHERE id = ?1", [id], |r| r.get(0))
            .optional()?;
        body.map(|b| serde_json::from_str(&b).map_err(|e| StoreError::Corrupt(id.into(), e)))
            .transpose()
    }

    /// Tasks matching the filters, oldest first.
    pub fn tasks<T: for<'de> Deserialize<'de>>(&self, filter: &TaskFilter) -> Result<Vec<T>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, body FROM tasks
             WHERE (?1 IS NULL OR family = ?1) AND (?2 IS NULL OR desired_status = ?2)
               AND (?3 IS NULL OR started_by = ?3) AND (?4 IS NULL OR service = ?4)
               AND (?5 IS NULL OR last_status != 'STOPPED')
             ORDER BY created_at, id",
        )?;
        let active: Option<i32> = filter.active_only.then_some(1);
        let rows = stmt.query_map(
            params![
                filter.family,
                filter.desired_status,
                filter.started_by,
                filter.service,
                active
            ],
            |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (id, body) = row?;
            out.push(serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(id, e))?);
        }
        Ok(out)
    }

    /// Ids of stopped tasks that stopped before `before` (epoch seconds).
    pub fn stopped_before(&self, before: f64) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM tasks WHERE last_status = 'STOPPED' AND stopped_at < ?1")?;
        let rows = stmt.query_map([before], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn delete_task(&mut self, id: &str) -> Result<()> {
        self.conn.execute("DELETE FROM tasks WHERE id = ?1", [id])?;
        Ok(())
    }
}

#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub family: Option<String>,
    pub desired_status: Option<String>,
    pub started_by: Option<String>,
    pub service: Option<String>,
    pub active_only: bool,
}

/// The indexed columns of a stored task.
pub trait TaskRow {
    fn id(&self) -> &str;
    fn family(&self) -> &str;
    fn revision(&self) -> u32;
    fn started_by(&self) -> Option<&str>;
    fn service(&self) -> Option<&str>;
    fn desired_status(&self) -> &str;
    fn last_status(&self) -> &str;
    fn created_at(&self) -> f64;
    fn stopped_at(&self) -> Option<f64>;
}

type DefinitionRow = (String, u32, String, f64, Option<f64>, String);

fn read_definition(r: &rusqlite::Row<'_>) -> rusqlite::Result<DefinitionRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn finish_definition(row: DefinitionRow) -> Result<StoredTaskDefinition> {
    let (family, revision, status, registered_at, deregistered_at, body) = row;
    let body = serde_json::from_str(&body)
        .map_err(|e| StoreError::Corrupt(format!("{family}:{revision}"), e))?;
    Ok(StoredTaskDefinition {
        family,
        revision,
        status,
        registered_at,
        deregistered_at,
        body,
    })
}

/// Puts the database in WAL mode (it stays so). Switching needs an exclusive lock, and
/// SQLite answers "busy" at once, without the busy handler, when another process is
/// switching the same new database: then this waits until it is done.
fn use_wal(conn: &Connection) -> rusqlite::Result<()> {
    let mut tries = 0;
    loop {
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
        if mode.eq_ignore_ascii_case("wal") {
            return Ok(());
        }
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && tries < 500 =>
            {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Two processes on one state dir (the agent and a `berth run`): registrations
    /// interleave, each waits for the other's write, and no revision is lost or doubled.
    #[test]
    fn two_connections_register_at_once_without_busy_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        let writers: Vec<_> = (0..3)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let mut store = Store::open(&path).unwrap();
                    (0..40)
                        .map(|i| {
                            // Reading between writes keeps this connection's snapshot
                            // older than the others' commits.
                            let _ = store.task_definition("web", None).unwrap();
                            store
                                .register_task_definition("web", &json!({"i": i}), 1.0)
                                .map(|d| d.revision)
                                .unwrap()
                        })
                        .collect::<Vec<u32>>()
                })
            })
            .collect();
        let mut revisions: Vec<u32> = writers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        revisions.sort_unstable();
        assert_eq!(revisions, (1..=120).collect::<Vec<u32>>());
    }

    #[test]
    fn revisions_count_up_per_family_and_latest_active_is_found() {
        let mut s = Store::open_in_memory().unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len());
        let a1 = s
            .register_task_definition("web", &json!({"family": "web"}), 1.0)
            .unwrap();
        let a2 = s
            .register_task_definition("web", &json!({"family": "web", "x": 2}), 2.0)
            .unwrap();
        let b1 = s
            .register_task_definition("batch", &json!({"family": "batch"}), 3.0)
            .unwrap();
        assert_eq!((a1.revision, a2.revision, b1.revision), (1, 2, 1));
        assert_eq!(s.task_definition("web", None).unwrap().unwrap().revision, 2);
        s.deregister_task_definition("web", 2, 4.0).unwrap();
        assert_eq!(s.task_definition("web", None).unwrap().unwrap().revision, 1);
        let inactive = s.task_definition("web", Some(2)).unwrap().unwrap();
        assert_eq!(inactive.status, "INACTIVE");
        assert_eq!(s.list_families(None, None).unwrap(), ["batch", "web"]);
        assert_eq!(
            s.list_task_definitions(Some("web"), Some("ACTIVE"))
                .unwrap(),
            [("web".to_string(), 1)]
        );
        assert!(s.task_definition("nope", None).unwrap().is_none());
    }

    #[test]
    fn reopening_a_file_keeps_data_and_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth.db");
        {
            let mut s = Store::open(&path).unwrap();
            s.register_task_definition("web", &json!({"family": "web"}), 1.0)
                .unwrap();
        }
        let s = Store::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len());
        assert_eq!(s.task_definition("web", None).unwrap().unwrap().revision, 1);
    }
}
