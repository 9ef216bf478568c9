//! What the engine's database and the SQLite store share about using one SQLite file from many
//! threads: the connection settings, a small pool of reading connections, and a checkpointer
//! thread, so that moving the WAL into the database (and its fsync) never stalls the writer.
//!
//! Both keep a single writing connection on a thread of their own (group commit); this crate
//! knows nothing of what they store.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;

/// How many reading connections a [`ReaderPool`] opens.
pub const READERS: usize = 4;

/// How often the checkpointer moves the WAL into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(1000);

/// Settings of every connection: WAL, NORMAL synchronous (a commit is durable across a crash
/// of the process; the WAL is fsynced at checkpoints), a busy timeout, and no automatic
/// checkpoints, which would run inside a writer's commit: [`spawn_checkpointer`] does them.
pub fn tune(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "busy_timeout", 5000)?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// A few connections that only read. WAL lets them read while the writer writes.
pub struct ReaderPool {
    readers: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl ReaderPool {
    /// Opens [`READERS`] connections to `path`.
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        let readers = (0..READERS)
            .map(|_| {
                let conn = Connection::open(path)?;
                tune(&conn)?;
                Ok(Mutex::new(conn))
            })
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(Self {
            readers,
            next: AtomicUsize::new(0),
        })
    }

    /// A free connection, else the next one in turn once it is free.
    pub fn get(&self) -> MutexGuard<'_, Connection> {
        for r in &self.readers {
            if let Ok(guard) = r.try_lock() {
                return guard;
            }
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        // A panic while holding the lock cannot leave SQLite inconsistent: keep going.
        self.readers[i].lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The writer thread's next group: waits for one queued write, then takes every write queued
/// meanwhile, up to `max`. `None` once every sender is gone.
pub fn next_batch<T>(rx: &std::sync::mpsc::Receiver<T>, max: usize) -> Option<Vec<T>> {
    let first = rx.recv().ok()?;
    let mut batch = vec![first];
    while batch.len() < max {
        match rx.try_recv() {
            Ok(item) => batch.push(item),
            Err(_) => break,
        }
    }
    Some(batch)
}

/// Starts a thread that checkpoints the WAL of `path` a few times a second (PASSIVE: it never
/// waits for, nor blocks, the writer or the readers). It stops with the process.
pub fn spawn_checkpointer(path: &Path, name: &str) -> std::io::Result<()> {
    let conn = Connection::open(path).map_err(std::io::Error::other)?;
    tune(&conn).map_err(std::io::Error::other)?;
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || loop {
            std::thread::sleep(CHECKPOINT_EVERY);
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "WAL checkpoint failed");
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_what_was_queued_up_to_the_limit() {
        let (tx, rx) = std::sync::mpsc::channel();
        for i in 0..5 {
            tx.send(i).expect("send");
        }
        assert_eq!(next_batch(&rx, 3), Some(vec![0, 1, 2]));
        assert_eq!(next_batch(&rx, 3), Some(vec![3, 4]));
        drop(tx);
        assert_eq!(next_batch(&rx, 3), None);
    }

    #[test]
    fn readers_see_commits_and_only_the_checkpointer_moves_the_wal_into_the_database() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let writer = Connection::open(&path).expect("open");
        tune(&writer).expect("tune");
        writer
            .execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2);")
            .expect("write");
        let pool = ReaderPool::open(&path).expect("pool");
        let n: i64 = pool
            .get()
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .expect("read");
        assert_eq!(n, 2);
        // Nothing checkpoints automatically: the table's pages are only in the WAL.
        let pages = |p: &Path| std::fs::metadata(p).map(|m| m.len() / 4096).unwrap_or(0);
        std::thread::sleep(CHECKPOINT_EVERY * 2);
        assert!(pages(&path) < 2, "checkpointed without the checkpointer");
        spawn_checkpointer(&path, "test-checkpointer").expect("checkpointer");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while pages(&path) < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "the WAL was never checkpointed"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
