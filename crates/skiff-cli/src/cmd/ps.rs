//! `skiff ps`: the daemon's workloads, as a table or JSON.

use crate::client::Client;
use crate::table::{parse_list_format, ListFormat};
use crate::term::json;
use clap::Args;
use hyper::Method;
use skiff_api::{Status, Workload, WorkloadKind};
use skiff_store::time::parse_rfc3339_time;
use std::time::{Duration, SystemTime};

/// List workloads (running ones; -a for all)
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  skiff ps\n  skiff ps -a\n  skiff ps -a --format json | jq '.[].name'\n  skiff ps -a --filter status=exited --filter kind=task\n  skiff ps --format '{{.Name}}\\t{{.Status}}'      Docker's template fields: the columns' names"
)]
pub struct PsArgs {
    /// Show every workload, not only running ones
    #[arg(short, long)]
    pub all: bool,

    /// Only print IDs
    #[arg(short, long)]
    pub quiet: bool,

    /// Full IDs
    #[arg(long)]
    pub no_trunc: bool,

    /// Only workloads matching KEY=VALUE, repeatable (all must match): name (a part of it),
    /// id (a prefix), image (a part of it), kind (task, app), status (created, running,
    /// restarting, exited, stopped)
    #[arg(short, long = "filter", value_name = "KEY=VALUE", value_parser = parse_filter)]
    pub filter: Vec<Filter>,

    /// Output format: table, json, or a template such as '{{.Name}}\t{{.Status}}'
    #[arg(long, default_value = "table", value_parser = parse_list_format)]
    pub format: ListFormat,
}

pub fn ps(client: &Client, args: PsArgs) -> anyhow::Result<u8> {
    // As Docker: asking for a status shows it, -a or not (`ps --filter status=exited`).
    let by_status = args.filter.iter().any(|f| matches!(f, Filter::Status(_)));
    let path = if args.all || by_status {
        "/v1/workloads?all=true"
    } else {
        "/v1/workloads"
    };
    let (_, list) = client.call::<Vec<Workload>>(Method::GET, path, None::<&()>)?;
    let mut list = list.unwrap_or_default();
    list.retain(|w| args.filter.iter().all(|f| f.matches(w)));
    if let ListFormat::Json = args.format {
        println!("{}", json(&list)?);
        return Ok(0);
    }
    let id = |w: &Workload| {
        if args.no_trunc {
            w.id.clone()
        } else {
            w.id[..12].to_string()
        }
    };
    if args.quiet {
        for w in &list {
            println!("{}", id(w));
        }
        return Ok(0);
    }
    let now = SystemTime::now();
    let mut rows = vec![
        ["ID", "NAME", "IMAGE", "KIND", "STATUS", "STARTED", "ROUTE"]
            .map(String::from)
            .to_vec(),
    ];
    for w in &list {
        rows.push(vec![
            id(w),
            w.name.clone(),
            w.spec
                .image_name
                .clone()
                .unwrap_or_else(|| w.spec.image[..19.min(w.spec.image.len())].to_string()),
            match w.kind {
                WorkloadKind::Task => "task",
                WorkloadKind::App => "app",
            }
            .to_string(),
            status(w, now),
            w.state
                .started_at
                .as_deref()
                .and_then(parse_rfc3339_time)
                .map(|t| format!("{} ago", ago(now, t)))
                .unwrap_or_else(|| "-".into()),
            w.spec.guest.route.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    crate::table::print(&args.format, &rows)?;
    Ok(0)
}

/// Docker's wording: `Up 3 seconds`, `Exited (1) 2 minutes ago`, `Restarting (1) …`.
pub fn status(w: &Workload, now: SystemTime) -> String {
    let since = |t: &Option<String>| {
        t.as_deref()
            .and_then(parse_rfc3339_time)
            .map(|t| ago(now, t))
            .unwrap_or_default()
    };
    let code = w
        .state
        .exit_code
        .map(|c| format!(" ({c})"))
        .unwrap_or_default();
    match w.state.status {
        Status::Created => "Created".into(),
        Status::Running => format!("Up {}", since(&w.state.started_at)),
        Status::Restarting => format!("Restarting{code} {} ago", since(&w.state.finished_at)),
        Status::Exited => format!("Exited{code} {} ago", since(&w.state.finished_at)),
        Status::Stopped => format!("Stopped {} ago", since(&w.state.finished_at)),
    }
}

fn ago(now: SystemTime, then: SystemTime) -> String {
    let s = now.duration_since(then).unwrap_or(Duration::ZERO).as_secs();
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match s {
        0 => "less than a second".into(),
        s if s < 60 => plural(s, "second"),
        s if s < 3600 => plural(s / 60, "minute"),
        s if s < 86_400 => plural(s / 3600, "hour"),
        s => plural(s / 86_400, "day"),
    }
}

/// One `--filter KEY=VALUE`.
#[derive(Debug, Clone)]
pub enum Filter {
    Name(String),
    Id(String),
    Image(String),
    Kind(WorkloadKind),
    Status(Status),
}

fn parse_filter(s: &str) -> Result<Filter, String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("invalid filter {s:?}: expected KEY=VALUE, e.g. status=running"))?;
    let json = |v: &str| serde_json::Value::String(v.to_ascii_lowercase());
    Ok(match k {
        "name" => Filter::Name(v.into()),
        "id" => Filter::Id(v.into()),
        "image" | "ancestor" => Filter::Image(v.into()),
        "kind" => Filter::Kind(
            serde_json::from_value(json(v))
                .map_err(|_| format!("invalid filter {s:?}: kind is task or app"))?,
        ),
        "status" => Filter::Status(serde_json::from_value(json(v)).map_err(|_| {
            format!(
                "invalid filter {s:?}: status is created, running, restarting, exited or stopped"
            )
        })?),
        _ => {
            return Err(format!(
                "invalid filter {s:?}: filter by name, id, image, kind or status"
            ))
        }
    })
}

impl Filter {
    fn matches(&self, w: &Workload) -> bool {
        match self {
            Filter::Name(n) => w.name.contains(n.as_str()),
            Filter::Id(p) => w.id.starts_with(p.as_str()),
            Filter::Image(i) => {
                w.spec.image.contains(i.as_str())
                    || w.spec
                        .image_name
                        .as_deref()
                        .is_some_and(|n| n.contains(i.as_str()))
            }
            Filter::Kind(k) => w.kind == *k,
            Filter::Status(s) => w.state.status == *s,
        }
    }
}
