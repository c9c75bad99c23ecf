//! `skiff events`: what happens to the daemon's workloads, as it happens.

use crate::client::Client;
use clap::Args;
use skiff_api::Event;
use std::io::Write;

/// Stream what happens to workloads: create, start, die, stop, deploy, redeploy, oom, destroy
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
skiff events                                  until interrupted\n  \
skiff events --format json | jq -c 'select(.action == \"die\")'\n  \
skiff events --filter name=api --filter action=oom\n  \
skiff events --since 10m --until now           what happened in the last ten minutes, then exit\n\n\
The daemon keeps its last 256 events for --since (none from before it started). A client more \
than 16 events behind is cut off and should reconnect.")]
pub struct EventsArgs {
    /// Output format: table (one line per event) or json (the API's objects, one a line)
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,

    /// Only events matching KEY=VALUE (name, id, kind, action); repeat to narrow further
    #[arg(long, short = 'f', value_name = "KEY=VALUE")]
    pub filter: Vec<String>,

    /// First the kept events since then: a time (2026-12-01T09:00:00Z) or an age (10m, 2h)
    #[arg(long, value_name = "WHEN", value_parser = crate::cmd::logs::parse_when)]
    pub since: Option<i64>,

    /// Stop at that time (a past one, such as now, ends after the kept events)
    #[arg(long, value_name = "WHEN", value_parser = crate::cmd::logs::parse_when)]
    pub until: Option<i64>,
}

pub fn events(client: &Client, args: EventsArgs) -> anyhow::Result<u8> {
    let filters: Vec<(String, String)> = args
        .filter
        .iter()
        .map(|f| parse_filter(f))
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    let stdout = std::io::stdout();
    let mut path = "/v1/events".to_string();
    let query: Vec<String> = [("since", args.since), ("until", args.until)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
        .collect();
    if !query.is_empty() {
        path = format!("{path}?{}", query.join("&"));
    }
    let result = client.stream_lines(&path, |line| {
        let e: Event = serde_json::from_slice(line)?;
        if !filters.iter().all(|(k, v)| matches(&e, k, v)) {
            return Ok(());
        }
        let text = match args.format.as_str() {
            "json" => String::from_utf8_lossy(line).trim_end().to_string(),
            _ => crate::term::for_terminal(&one_line(&e)).into_owned(),
        };
        let mut out = stdout.lock();
        writeln!(out, "{text}").and_then(|()| out.flush())?;
        Ok(())
    });
    match result {
        Err(e) if is_broken_pipe(&e) => Ok(0),
        Err(e) => Err(e),
        // Asked to end.
        Ok(()) if args.until.is_some() => Ok(0),
        // The daemon ended the stream: it stopped, or this client fell behind.
        Ok(()) => {
            anyhow::bail!("the daemon ended the event stream (it stopped, or this reader fell behind); run skiff events again")
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// `TIME ACTION KIND NAME (details)`, as `docker events` prints them.
fn one_line(e: &Event) -> String {
    let action = serde_json::to_value(e.action)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let kind = match e.kind {
        skiff_api::WorkloadKind::Task => "task",
        skiff_api::WorkloadKind::App => "app",
    };
    let mut details = vec![format!("id={}", &e.id[..e.id.len().min(12)])];
    if let Some(c) = e.exit_code {
        details.push(format!("exitCode={c}"));
    }
    if let Some(v) = e.version {
        details.push(format!("version={v}"));
    }
    if let Some(r) = &e.request_id {
        details.push(format!("request={r}"));
    }
    if let Some(r) = &e.reason {
        details.push(format!("reason={r:?}"));
    }
    format!(
        "{} {kind} {action} {} ({})",
        e.time,
        e.name,
        details.join(", ")
    )
}

fn parse_filter(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("invalid filter {s:?}: expected KEY=VALUE, e.g. action=die"))?;
    match k {
        "name" | "id" | "kind" | "action" | "event" => Ok((k.to_string(), v.to_string())),
        _ => Err(format!(
            "invalid filter {s:?}: the keys are name, id, kind and action"
        )),
    }
}

fn matches(e: &Event, key: &str, value: &str) -> bool {
    match key {
        "name" => e.name == value,
        "id" => e.id.starts_with(value),
        "kind" => serde_json::to_value(e.kind).is_ok_and(|k| k == value),
        _ => serde_json::to_value(e.action).is_ok_and(|a| a == value),
    }
}
