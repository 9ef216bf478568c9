//! What the engine's database and the SQLite store share about using one SQLite file from many
//! threads: the connection settings, a small pool of reading connections, the writer thread's
//! batching, and the WAL's upkeep: a checkpointer thread moves the WAL into the database (and
//! fsyncs it) beside the writer, and once the WAL has grown past [`RESTART_FRAMES`] asks the
//! writer to start it over between two groups (which, under a steady stream of writes, a
//! checkpoint beside the writer never can: the WAL would grow without end).
//!
//! Both keep a single writing connection on a thread of their own (group commit); this crate
//! knows nothing of what they store.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::Connection;

/// How many reading connections a [`ReaderPool`] opens.
pub const READERS: usize = 4;

/// How often the checkpointer moves the WAL into the database. Often, so that each
/// checkpoint's fsync has little to write: on ext4 a long fsync holds up the writer's appends.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

/// How long the WAL may grow (in 4 KiB pages: 256 MiB) before the writer starts it over.
/// Each restart stalls the writer for a checkpoint's fsyncs (5–20 ms here), so they should be
/// rare: at full load this is every few seconds.
pub const RESTART_FRAMES: i64 = 65536;

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

/// The checkpointer's request to the writer to start the WAL over.
#[derive(Clone, Default)]
pub struct WalRestart(Arc<AtomicBool>);

impl WalRestart {
    /// For the writer, between two groups: if the checkpointer asked, checkpoints the little
    /// the checkpointer has not yet moved, waits for readers to leave the WAL, and makes the
    /// next write start the WAL from its beginning.
    pub fn run_if_asked(&self, conn: &Connection) {
        if self.0.swap(false, Ordering::AcqRel) {
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "cannot restart the WAL");
            }
        }
    }

    fn ask(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Starts a thread that checkpoints the WAL of `path` a few times a second (PASSIVE: it never
/// waits for, nor blocks, the writer or the readers) and asks the writer, through what it
/// returns, to restart the WAL once it is longer than [`RESTART_FRAMES`]. The thread stops
/// once what it returns (and every clone of it) is dropped.
pub fn spawn_checkpointer(path: &Path, name: &str) -> std::io::Result<WalRestart> {
    spawn_checkpointer_restarting_at(path, name, RESTART_FRAMES)
}

/// [`spawn_checkpointer`] with another WAL length (in pages) at which the writer is asked to
/// restart it.
pub fn spawn_checkpointer_restarting_at(
    path: &Path,
    name: &str,
    restart_frames: i64,
) -> std::io::Result<WalRestart> {
    let conn = Connection::open(path).map_err(std::io::Error::other)?;
    tune(&conn).map_err(std::io::Error::other)?;
    let restart = WalRestart::default();
    let asked = restart.clone();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || loop {
            std::thread::sleep(CHECKPOINT_EVERY);
            // Only this thread holds the request any more: the writer is gone, and so is the
            // database's owner.
            if Arc::strong_count(&asked.0) == 1 {
                break;
            }
            match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)) {
                Ok(frames) if frames > restart_frames => asked.ask(),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
            }
        })?;
    Ok(restart)
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
        let _asks = spawn_checkpointer(&path, "test-checkpointer").expect("checkpointer");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while pages(&path) < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "the WAL was never checkpointed"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Under a steady stream of writes the WAL stays short: the checkpointer asks, the writer
    /// restarts it between groups. Without that the WAL would hold everything written (60 MB;
    /// 87 MB with SQLite's frame headers).
    #[test]
    fn the_wal_stays_short_under_steady_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let writer = Connection::open(&path).expect("open");
        tune(&writer).expect("tune");
        writer
            .execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, blob BLOB NOT NULL)")
            .expect("schema");
        const LIMIT: i64 = 1024;
        let restart = spawn_checkpointer_restarting_at(&path, "test-checkpointer", LIMIT)
            .expect("checkpointer");
        let blob = vec![7u8; 3000];
        let mut id = 0i64;
        // 60 MB in groups of 100 KB, a little slower than a busy service writes.
        for _ in 0..600 {
            writer.execute_batch("BEGIN").expect("begin");
            for _ in 0..32 {
                id += 1;
                writer
                    .prepare_cached("INSERT INTO t (id, blob) VALUES (?1, ?2)")
                    .and_then(|mut s| s.execute(rusqlite::params![id, blob]))
                    .expect("insert");
            }
            writer.execute_batch("COMMIT").expect("commit");
            restart.run_if_asked(&writer);
            std::thread::sleep(Duration::from_millis(2));
        }
        let wal = std::fs::metadata(dir.path().join("t.db-wal"))
            .expect("wal")
            .len();
        // Unbounded it would hold all 60 MB; the margin is for a loaded machine, where the
        // checkpointer may run late.
        assert!(wal < 7 * LIMIT as u64 * 4096, "the WAL grew to {wal} bytes");
        let n: i64 = writer
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .expect("count");
        assert_eq!(n, id);
    }
}
