//! `skiff up` / `skiff down`: a project is a named set of workloads, applied as a whole.
//! Applying the same set twice changes nothing; a changed app gets the new spec as its next
//! version without downtime (the path `skiff deploy` takes), a changed task is replaced, a
//! removed entry is stopped and removed. One project is applied at a time.

use crate::daemon::Daemon;
use crate::error::ApiError;
use skiff_api::{CreateRequest, Desired, ProjectChanges, ProjectRequest, Status, WorkloadKind};
use std::sync::Arc;
use std::time::Duration;

static APPLYING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub async fn apply(
    d: &Arc<Daemon>,
    project: &str,
    req: ProjectRequest,
) -> Result<ProjectChanges, ApiError> {
    check_project(project)?;
    let _one_at_a_time = APPLYING.lock().await;
    // Check every entry before changing anything, so that a bad file changes nothing.
    let mut kinds = std::collections::BTreeMap::new();
    for (name, spec) in &req.workloads {
        if !crate::daemon::valid_name(name) {
            return Err(ApiError::BadRequest(format!(
                "entry {name:?}: not a valid workload name"
            )));
        }
        let kind = d
            .check(spec)
            .await
            .map_err(|e| ApiError::BadRequest(format!("entry {name}: {e}")))?;
        kinds.insert(name.clone(), kind);
    }
    let existing = d.list();
    for w in &existing {
        if req.workloads.contains_key(&w.name) && w.project.as_deref() != Some(project) {
            return Err(ApiError::Conflict(format!(
                "entry {}: the name is taken by a workload outside project {project}; remove it (skiff rm -f {}) or rename the entry",
                w.name, w.name
            )));
        }
    }
    let mut changes = ProjectChanges::default();
    for w in existing
        .iter()
        .filter(|w| w.project.as_deref() == Some(project))
    {
        if !req.workloads.contains_key(&w.name) {
            d.remove(&w.id, true).await?;
            changes.removed.push(w.name.clone());
        }
    }
    for (name, spec) in req.workloads {
        let old = existing
            .iter()
            .find(|w| w.name == name && w.project.as_deref() == Some(project));
        match old {
            Some(w) if w.spec == spec => {
                // Running, or a task that ran to its end: as asked. Stopped or never started:
                // `up` starts it.
                let settled = w.desired == Desired::Running || w.state.status == Status::Exited;
                if settled {
                    changes.unchanged.push(name);
                } else {
                    d.start(&w.id).await?;
                    changes.started.push(name);
                }
            }
            Some(w)
                if w.kind == WorkloadKind::App && kinds.get(&name) == Some(&WorkloadKind::App) =>
            {
                d.redeploy(&w.id, spec).await?;
                changes.updated.push(name);
            }
            Some(w) => {
                d.stop(&w.id, Duration::from_secs(10)).await?;
                d.remove(&w.id, true).await?;
                create(d, project, name.clone(), spec).await?;
                changes.replaced.push(name);
            }
            None => {
                create(d, project, name.clone(), spec).await?;
                changes.created.push(name);
            }
        }
    }
    Ok(changes)
}

pub async fn remove(d: &Arc<Daemon>, project: &str) -> Result<ProjectChanges, ApiError> {
    check_project(project)?;
    let _one_at_a_time = APPLYING.lock().await;
    let mut changes = ProjectChanges::default();
    for w in d
        .list()
        .into_iter()
        .filter(|w| w.project.as_deref() == Some(project))
    {
        d.remove(&w.id, true).await?;
        changes.removed.push(w.name);
    }
    changes.removed.sort();
    Ok(changes)
}

async fn create(
    d: &Arc<Daemon>,
    project: &str,
    name: String,
    spec: skiff_api::WorkloadSpec,
) -> Result<(), ApiError> {
    d.create(
        CreateRequest {
            replace: false,
            name: Some(name),
            spec,
            start: true,
        },
        Some(project.to_string()),
    )
    .await
    .map(|_| ())
}

fn check_project(p: &str) -> Result<(), ApiError> {
    if crate::daemon::valid_name(p) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "invalid project name {p:?}: letters, digits, `_`, `.`, `-`"
        )))
    }
}
