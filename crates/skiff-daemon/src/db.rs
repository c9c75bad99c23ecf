//! The state database: one redb file holding every workload record (spec, desired state,
//! observed state, restart count) as JSON, keyed by id.
//!
//! Every change is one committed transaction (fsynced) before the API answers or the supervisor
//! acts on it, so that after a `kill -9` the next daemon finds exactly what the last one had
//! promised. redb is copy-on-write: a crash mid-commit leaves the previous commit intact.

use crate::error::StateError;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use skiff_api::Workload;
use std::path::Path;

const WORKLOADS: TableDefinition<&str, &[u8]> = TableDefinition::new("workloads");

pub struct Db {
    db: Database,
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
        Ok(Db { db })
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

    pub fn put(&self, w: &Workload) -> Result<(), StateError> {
        let json = serde_json::to_vec(w).map_err(err)?;
        let tx = self.db.begin_write().map_err(err)?;
        {
            let mut table = tx.open_table(WORKLOADS).map_err(err)?;
            table.insert(w.id.as_str(), json.as_slice()).map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    pub fn delete(&self, id: &str) -> Result<(), StateError> {
        let tx = self.db.begin_write().map_err(err)?;
        {
            let mut table = tx.open_table(WORKLOADS).map_err(err)?;
            table.remove(id).map_err(err)?;
        }
        tx.commit().map_err(err)
    }
}
