//! The store's single writer: one thread owns the connection that writes, takes every write
//! queued meanwhile and commits them in one transaction (group commit), then answers each.
//! Every write runs inside its own savepoint, so one that fails is rolled back alone and the
//! others of its batch still commit. A caller hears its result only once it is committed.

use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;
use wfm_core::store::StoreError;

/// What a write does once its batch has committed (or failed to): answers its caller.
type Reply = Box<dyn FnOnce(Option<&str>) + Send>;

/// A write: runs against the writer's connection inside the batch's transaction.
type Job = Box<dyn FnOnce(&Connection) -> Reply + Send>;

/// The most writes committed together.
const MAX_BATCH: usize = 1024;

/// The sending side of the writer thread.
pub(crate) struct Writer {
    tx: mpsc::Sender<Job>,
}

fn stopped() -> StoreError {
    StoreError::Backend("the store's writer thread has stopped".into())
}

impl Writer {
    /// Starts the writer thread over `conn`; between groups it restarts the WAL when `wal`
    /// asks (file databases).
    pub(crate) fn start(
        conn: Connection,
        wal: Option<wfm_sqlite::WalRestart>,
    ) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("wfm-store-writer".into())
            .spawn(move || run(conn, rx, wal))
            .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;
        Ok(Self { tx })
    }

    /// Runs `f` on the writer's connection in the next batch; returns its result once the
    /// batch is committed. If `f` fails, what it wrote is rolled back and its error returned.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(move |conn| {
            let result = in_savepoint(conn, f);
            Box::new(move |commit_error| {
                let result = match commit_error {
                    Some(e) => Err(StoreError::Backend(e.to_string())),
                    None => result,
                };
                // The caller may have gone away (a dropped request); nothing to tell then.
                let _ = answer.send(result);
            })
        });
        self.tx.send(job).map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }

    /// Queues `f` for the next batch without waiting for its commit; a failure is logged as
    /// `what`. Later writes and reads through the writer see it (the queue is in order).
    /// `f` must be one statement: it runs without a savepoint of its own (a failed statement
    /// leaves nothing behind), which halves its cost on the writer thread.
    pub(crate) fn submit<F>(&self, what: &'static str, f: F) -> Result<(), StoreError>
    where
        F: FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static,
    {
        let job: Job = Box::new(move |conn| {
            let result = f(conn);
            Box::new(move |commit_error| {
                let failure = match (commit_error, result) {
                    (Some(e), _) => Some(e.to_string()),
                    (None, Err(e)) => Some(e.to_string()),
                    (None, Ok(())) => None,
                };
                if let Some(error) = failure {
                    tracing::error!(%error, "{what} was not written");
                }
            })
        });
        self.tx.send(job).map_err(|_| stopped())
    }
}

fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let backend = |e: rusqlite::Error| StoreError::Backend(e.to_string());
    let run = |sql: &str| -> Result<(), StoreError> {
        conn.prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute([]))
            .map(|_| ())
            .map_err(backend)
    };
    run("SAVEPOINT write")?;
    let result = f(conn);
    if result.is_err() {
        run("ROLLBACK TO write")?;
    }
    run("RELEASE write")?;
    result
}

fn run(conn: Connection, rx: mpsc::Receiver<Job>, wal: Option<wfm_sqlite::WalRestart>) {
    while let Some(batch) = wfm_sqlite::next_batch(&rx, MAX_BATCH) {
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            // Each write on its own then: a savepoint outside a transaction commits on release.
            tracing::warn!(error = %e, writes = batch.len(), "cannot begin a group commit");
            for job in batch {
                job(&conn)(None);
            }
            continue;
        }
        let replies: Vec<Reply> = batch.into_iter().map(|job| job(&conn)).collect();
        let commit = conn.execute_batch("COMMIT").map_err(|e| e.to_string());
        if let Err(e) = &commit {
            tracing::error!(error = %e, writes = replies.len(), "the store's group commit failed");
            let _ = conn.execute_batch("ROLLBACK");
        }
        let error = commit.err();
        for reply in replies {
            reply(error.as_deref());
        }
        if let Some(wal) = &wal {
            wal.run_if_asked(&conn);
        }
    }
}
