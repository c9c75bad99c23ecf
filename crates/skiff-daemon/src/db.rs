//! The state database: one redb file holding every workload record (spec, desired state,
//! observed state, restart count) as JSON, keyed by id.
//!
//! Every change is one fsynced commit before the API answers or the supervisor acts on it, so
//! that after a `kill -9` the next daemon finds exactly what the last one had promised. redb is
//! copy-on-write: a crash mid-commit leaves the previous commit intact.
//!
//! **Group commit.** An fsync costs milliseconds here (about 3 ms on this project's VM), and a
//! task makes three changes (created, running, exited): committed one by one, under a lock, that
//! caps the node at a few hundred tasks per second. So changes are queued, in order, to one
//! writer thread, which commits everything queued in one transaction (one fsync) and then
//! answers every change of the batch. Whoever made a change awaits its [`Commit`] before it
//! answers or acts; the order of changes to one record is the order they were queued in.

use crate::error::StateError;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use skiff_api::Workload;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::mpsc;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::oneshot;

const WORKLOADS: TableDefinition<&str, &[u8]> = TableDefinition::new("workloads");

pub struct Db {
    db: Arc<Database>,
    queue: mpsc::Sender<Change>,
}

enum Op {
    Put(String, Vec<u8>),
    Delete(String),
}

struct Change {
    op: Op,
    done: oneshot::Sender<Result<(), StateError>>,
}

/// A queued change: resolves once it is committed (or failed to be).
pub struct Commit(Result<oneshot::Receiver<Result<(), StateError>>, Option<StateError>>);

impl Future for Commit {
    type Output = Result<(), StateError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            Ok(rx) => Pin::new(rx).poll(cx).map(|r| {
                r.unwrap_or_else(|_| Err(StateError::Db("the state writer stopped".into())))
            }),
            Err(e) => Poll::Ready(Err(e
                .take()
                .unwrap_or_else(|| StateError::Db("polled after completion".into())))),
        }
    }
}

fn err(e: impl std::fmt::Display) -> StateError {
    StateError::Db(e.to_string())
}

impl Db {
    pub fn open(path: &Path) -> Result<Db, StateError> {
        let db = Database::create(path)
            .map_err(|e| StateError::Db(format!("{}: {e}", path.display())))?;
        // Create the table so that the first read of an empty database finds it.
        let tx = db.begin_write().map_err(err)?;
        tx.open_table(WORKLOADS).map_err(err)?;
        tx.commit().map_err(err)?;
        let db = Arc::new(db);
        let (queue, rx) = mpsc::channel();
        let writer = db.clone();
        std::thread::Builder::new()
            .name("skiff-state".into())
            .spawn(move || write_loop(&writer, rx))
            .map_err(|e| StateError::Db(format!("cannot start the state writer: {e}")))?;
        Ok(Db { db, queue })
    }

    pub fn load_all(&self) -> Result<Vec<Workload>, StateError> {
        let tx = self.db.begin_read().map_err(err)?;
        let table = tx.open_table(WORKLOADS).map_err(err)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(err)? {
            let (k, v) = row.map_err(err)?;
            let w: Workload =
                serde_json::from_slice(v.value()).map_err(|e| StateError::Corrupt {
                    key: k.value().to_string(),
                    reason: e.to_string(),
                })?;
            out.push(w);
        }
        Ok(out)
    }

    /// Queue `w` to be written; await the answer before relying on it.
    pub fn put(&self, w: &Workload) -> Commit {
        match serde_json::to_vec(w) {
            Ok(json) => self.queue(Op::Put(w.id.clone(), json)),
            Err(e) => Commit(Err(Some(err(e)))),
        }
    }

    pub fn delete(&self, id: &str) -> Commit {
        self.queue(Op::Delete(id.to_string()))
    }

    fn queue(&self, op: Op) -> Commit {
        let (done, rx) = oneshot::channel();
        match self.queue.send(Change { op, done }) {
            Ok(()) => Commit(Ok(rx)),
            Err(_) => Commit(Err(Some(StateError::Db("the state writer stopped".into())))),
        }
    }
}

/// The writer thread: everything queued so far, in one transaction, until the daemon drops
/// its [`Db`].
fn write_loop(db: &Database, rx: mpsc::Receiver<Change>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        let result = commit(db, &batch);
        for c in batch {
            let _ = c.done.send(result.as_ref().map(|_| ()).map_err(err));
        }
    }
}

fn commit(db: &Database, batch: &[Change]) -> Result<(), StateError> {
    let tx = db.begin_write().map_err(err)?;
    {
        let mut table = tx.open_table(WORKLOADS).map_err(err)?;
        for c in batch {
            match &c.op {
                Op::Put(id, json) => {
                    table.insert(id.as_str(), json.as_slice()).map_err(err)?;
                }
                Op::Delete(id) => {
                    table.remove(id.as_str()).map_err(err)?;
                }
            }
        }
    }
    tx.commit().map_err(err)
}
