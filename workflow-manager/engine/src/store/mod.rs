//! The engine's SQLite database. Each round of an execution is written as one unit by the
//! writer thread, many units per transaction (group commit), and acknowledged only once
//! committed: an event is committed before anyone acts on it, an answer before it is
//! acknowledged. Reads go through a few reading connections (WAL lets them read while the
//! writer writes); state machines and activities through the main connection.

pub mod catalog;
pub mod history;
mod legacy;
mod rows;
mod schema;
pub mod write;

use std::path::Path;
use std::sync::Mutex;

use rusqlite::Connection;

use crate::error::EngineError;
pub use rows::{from_ms, ExecutionRow, Loaded, StateMachineRow, TaskRecord};
use write::{WriteSet, EXECUTION_EXISTS};

/// How a unit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Committed {
    /// It is in the database.
    Yes,
    /// It was refused: its execution's name is taken.
    ExecutionExists,
}

/// Who waits for a unit's commit: a task (awaiting) or a thread (blocking).
enum Reply {
    Task(tokio::sync::oneshot::Sender<Result<Committed, String>>),
    Thread(std::sync::mpsc::SyncSender<Result<Committed, String>>),
}

impl Reply {
    fn send(self, outcome: Result<Committed, String>) {
        // A waiter that went away (a dropped request) needs no answer.
        let _ = match self {
            Reply::Task(tx) => tx.send(outcome).map_err(|_| ()),
            Reply::Thread(tx) => tx.send(outcome).map_err(|_| ()),
        };
    }
}

struct Queued {
    write: WriteSet,
    done: Option<Reply>,
}

/// The database handle.
pub struct EngineDb {
    conn: Mutex<Connection>,
    /// The exclusive lock on the database (file databases): one process at a time.
    lock: Mutex<Option<std::fs::File>>,
    /// Reading connections (file databases).
    readers: Option<wfm_sqlite::ReaderPool>,
    /// The group-commit writer of a file database (`None` in memory: units are applied at
    /// once on the main connection).
    writer: Option<std::sync::mpsc::Sender<Queued>>,
}

fn writer_stopped() -> EngineError {
    EngineError::Storage("the writer thread has stopped".into())
}

/// Applies one unit inside a savepoint: refused or failed, it leaves the transaction as it was.
fn apply_unit(conn: &Connection, w: &WriteSet) -> Result<Committed, String> {
    let result = (|| -> rusqlite::Result<Option<&'static str>> {
        conn.execute_batch("SAVEPOINT unit")?;
        match write::apply(conn, w) {
            Ok(None) => {
                conn.execute_batch("RELEASE unit")?;
                Ok(None)
            }
            Ok(Some(reason)) => {
                conn.execute_batch("ROLLBACK TO unit; RELEASE unit")?;
                Ok(Some(reason))
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK TO unit; RELEASE unit");
                Err(e)
            }
        }
    })();
    match result {
        Ok(None) => Ok(Committed::Yes),
        Ok(Some(r)) if r == EXECUTION_EXISTS => Ok(Committed::ExecutionExists),
        Ok(Some(r)) => Err(r.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// The writer thread: takes every queued unit, commits them in one transaction, then answers
/// them in order; between groups restarts the WAL when the checkpointer asks.
fn run_writer(
    mut conn: Connection,
    rx: std::sync::mpsc::Receiver<Queued>,
    wal: wfm_sqlite::WalRestart,
) {
    const MAX_BATCH: usize = 1024;
    while let Some(batch) = wfm_sqlite::next_batch(&rx, MAX_BATCH) {
        let result = (|| -> rusqlite::Result<Vec<Result<Committed, String>>> {
            let tx = conn.transaction()?;
            let outcomes = batch.iter().map(|q| apply_unit(&tx, &q.write)).collect();
            tx.commit()?;
            Ok(outcomes)
        })();
        match result {
            Ok(outcomes) => {
                for (q, outcome) in batch.into_iter().zip(outcomes) {
                    if let Err(e) = &outcome {
                        tracing::error!(execution = q.write.execution, error = %e, "an engine write failed");
                    }
                    if let Some(done) = q.done {
                        done.send(outcome);
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, units = batch.len(), "an engine commit failed");
                for q in batch {
                    if let Some(done) = q.done {
                        done.send(Err(e.to_string()));
                    }
                }
            }
        }
        wal.run_if_asked(&conn);
    }
}

impl EngineDb {
    /// Opens (creating or upgrading) the database at `path`, in WAL mode.
    pub fn open(path: &Path) -> Result<Self, EngineError> {
        let lock = Self::lock_file(path)?;
        let mut db = Self::init(Connection::open(path)?)?;
        db.lock = Mutex::new(Some(lock));
        let writer_conn = Connection::open(path)?;
        wfm_sqlite::tune(&writer_conn)?;
        let wal = wfm_sqlite::spawn_checkpointer(path, "wfm-engine-checkpointer").map_err(|e| {
            EngineError::Storage(format!("cannot start the checkpointer thread: {e}"))
        })?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("wfm-engine-writer".into())
            .spawn(move || run_writer(writer_conn, rx, wal))
            .map_err(|e| EngineError::Storage(format!("cannot start the writer thread: {e}")))?;
        db.writer = Some(tx);
        db.readers = Some(wfm_sqlite::ReaderPool::open(path)?);
        Ok(db)
    }

    /// An in-memory database (tests, benchmarks).
    pub fn in_memory() -> Result<Self, EngineError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Self, EngineError> {
        wfm_sqlite::tune(&conn)?;
        schema::migrate(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
            lock: Mutex::new(None),
            readers: None,
            writer: None,
        })
    }

    /// Takes `PATH.lock` exclusively: a second process (a second service on the same data
    /// directory) would hand out the same tasks and number executions alike.
    fn lock_file(path: &Path) -> Result<std::fs::File, EngineError> {
        let lock_path = path.with_extension("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| {
                EngineError::Storage(format!("cannot open {}: {e}", lock_path.display()))
            })?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => Err(EngineError::Storage(format!(
                "the engine database {} is in use by another process (it holds {})",
                path.display(),
                lock_path.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(EngineError::Storage(format!(
                "cannot lock {}: {e}",
                lock_path.display()
            ))),
        }
    }

    /// Gives up the database's lock (the engine halted: another may open it).
    pub fn unlock(&self) {
        self.lock.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// Commits a unit; returns once it is committed (or refused).
    pub async fn commit(&self, write: WriteSet) -> Result<Committed, EngineError> {
        let Some(tx) = &self.writer else {
            let conn = self.conn();
            return apply_unit(&conn, &write).map_err(EngineError::Storage);
        };
        let (done, committed) = tokio::sync::oneshot::channel();
        tx.send(Queued {
            write,
            done: Some(Reply::Task(done)),
        })
        .map_err(|_| writer_stopped())?;
        committed
            .await
            .map_err(|_| writer_stopped())?
            .map_err(EngineError::Storage)
    }

    /// Returns once everything queued so far is committed, blocking the thread (halt).
    pub fn flush_blocking(&self) -> Result<(), EngineError> {
        let Some(tx) = &self.writer else {
            return Ok(());
        };
        let (done, committed) = std::sync::mpsc::sync_channel(1);
        tx.send(Queued {
            write: WriteSet::default(),
            done: Some(Reply::Thread(done)),
        })
        .map_err(|_| writer_stopped())?;
        committed
            .recv()
            .map_err(|_| writer_stopped())?
            .map(|_| ())
            .map_err(EngineError::Storage)
    }

    /// Whether the database is in memory (tests, benchmarks).
    pub fn is_in_memory(&self) -> bool {
        self.writer.is_none()
    }

    /// A connection to read with: a free reading connection, else the next one in turn; the
    /// main connection in memory.
    pub fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        match &self.readers {
            Some(pool) => pool.get(),
            None => self.conn(),
        }
    }

    /// The main connection (state machines, activities).
    pub fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent: keep going.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}
