//! runc's command line, as its callers use it: global flags before the command, then the
//! command's flags (`--flag value`, `--flag=value`, `-b value`) and positionals.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

pub const USAGE: &str = "usage: skiff-oci [--root DIR] [--log FILE] [--log-format text|json] \
[--systemd-cgroup] COMMAND\ncommands: create --bundle DIR [--pid-file FILE] ID | start ID | \
state ID | kill ID [SIGNAL] | delete [--force] ID | features | --version";

/// Where runc keeps container state by default is /run/runc; skiff-oci keeps its own.
const DEFAULT_ROOT: &str = "/run/skiff-oci";

#[derive(Debug, Default)]
pub struct Global {
    pub root: Option<PathBuf>,
    pub log: Option<PathBuf>,
    pub log_json: bool,
}

impl Global {
    pub fn root(&self) -> PathBuf {
        self.root
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT))
    }

    /// One error line in the caller's log file, in runc's format (`{"level","msg","time"}` for
    /// json).
    pub fn log_error(&self, message: &str) {
        self.log("error", message)
    }

    /// A warning: on stderr and in the caller's log (a failed poststart or poststop hook, which
    /// the runtime-spec says not to fail on).
    pub fn warn(&self, message: &str) {
        eprintln!("skiff-oci: warning: {message}");
        self.log("warning", message)
    }

    fn log(&self, level: &str, message: &str) {
        let Some(path) = &self.log else { return };
        let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        else {
            return;
        };
        let time = skiff_store::time::format_rfc3339_nanos(std::time::SystemTime::now());
        let line = if self.log_json {
            serde_json::json!({"level": level, "msg": message, "time": time}).to_string()
        } else {
            format!("time=\"{time}\" level={level} msg={message:?}")
        };
        let _ = writeln!(f, "{line}");
    }
}

/// The global flags, and the command with its arguments.
pub fn global(args: &[String]) -> Result<(Global, Vec<String>), String> {
    let mut g = Global::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if !arg.starts_with('-') {
            return Ok((g, args[i..].to_vec()));
        }
        let (name, inline) = split_flag(arg);
        let mut value = || -> Result<String, String> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            i += 1;
            args.get(i)
                .cloned()
                .ok_or_else(|| format!("flag --{name} needs a value"))
        };
        match name {
            "root" => g.root = Some(PathBuf::from(value()?)),
            "log" => g.log = Some(PathBuf::from(value()?)),
            "log-format" => match value()?.as_str() {
                "json" => g.log_json = true,
                "text" => g.log_json = false,
                other => return Err(format!("--log-format {other:?}: expected text or json")),
            },
            // Accepted for runc's callers; skiff-oci makes no cgroups (see docs/docker.md).
            "systemd-cgroup" | "debug" => {}
            "rootless" | "criu" => {
                value()?;
            }
            "version" | "v" => return Ok((g, vec!["version".into()])),
            "help" | "h" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            other => return Err(format!("unknown global flag --{other}.\n{USAGE}")),
        }
        i += 1;
    }
    Ok((g, Vec::new()))
}

fn split_flag(arg: &str) -> (&str, Option<String>) {
    let bare = arg.trim_start_matches('-');
    match bare.split_once('=') {
        Some((n, v)) => (n, Some(v.to_string())),
        None => (bare, None),
    }
}

/// A command's flags and positionals.
#[derive(Debug)]
pub struct Parsed {
    pub command: String,
    values: HashMap<String, String>,
    bools: Vec<String>,
    pub positional: Vec<String>,
}

impl Parsed {
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
    pub fn flag(&self, name: &str) -> bool {
        self.bools.iter().any(|b| b == name)
    }

    /// The container id: the first positional, usable as a directory name.
    pub fn id(&self) -> Result<&str, String> {
        let id = self
            .positional
            .first()
            .ok_or_else(|| format!("{}: the container id is missing", self.command))?;
        if id.is_empty() || id == "." || id == ".." || id.contains('/') {
            return Err(format!(
                "{id:?} is not a valid container id (no `/`, not empty, not `.` or `..`)"
            ));
        }
        Ok(id)
    }
}

pub fn parse(
    command: &str,
    args: &[String],
    value_flags: &[&str],
    bool_flags: &[&str],
) -> Result<Parsed, String> {
    let mut p = Parsed {
        command: command.to_string(),
        values: HashMap::new(),
        bools: Vec::new(),
        positional: Vec::new(),
    };
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg.starts_with('-') && arg.len() > 1 {
            let (name, inline) = split_flag(arg);
            if value_flags.contains(&name) {
                let v = match inline {
                    Some(v) => v,
                    None => {
                        i += 1;
                        args.get(i)
                            .cloned()
                            .ok_or_else(|| format!("{command}: flag --{name} needs a value"))?
                    }
                };
                p.values.insert(name.to_string(), v);
            } else if bool_flags.contains(&name) {
                if inline.as_deref() != Some("false") {
                    p.bools.push(name.to_string());
                }
            } else {
                return Err(format!("{command}: unknown flag {arg}.\n{USAGE}"));
            }
        } else {
            p.positional.push(arg.clone());
        }
        i += 1;
    }
    Ok(p)
}

/// `TERM`, `SIGTERM`, `15`.
pub fn signal(s: &str) -> Result<i32, String> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let name = s.trim_start_matches("SIG");
    Ok(match name {
        "TERM" => libc::SIGTERM,
        "KILL" => libc::SIGKILL,
        "INT" => libc::SIGINT,
        "HUP" => libc::SIGHUP,
        "QUIT" => libc::SIGQUIT,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "STOP" => libc::SIGSTOP,
        "CONT" => libc::SIGCONT,
        "WINCH" => libc::SIGWINCH,
        "ALRM" => libc::SIGALRM,
        "PIPE" => libc::SIGPIPE,
        _ => {
            return Err(format!(
                "kill: unknown signal {s:?}: give a number or a name such as TERM, KILL, INT"
            ))
        }
    })
}

pub fn version() -> String {
    format!(
        "skiff-oci version {}\nspec: 1.0.2\n",
        env!("CARGO_PKG_VERSION")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn global_flags_come_before_the_command_in_both_spellings() {
        let (g, rest) = global(&strings(&[
            "--root=/r",
            "--log",
            "/l.json",
            "--log-format",
            "json",
            "--systemd-cgroup",
            "delete",
            "--force",
            "id",
        ]))
        .unwrap();
        assert_eq!(g.root, Some(PathBuf::from("/r")));
        assert_eq!(g.log, Some(PathBuf::from("/l.json")));
        assert!(g.log_json);
        assert_eq!(rest, strings(&["delete", "--force", "id"]));
        assert!(global(&strings(&["--log-format", "xml", "state", "x"]))
            .unwrap_err()
            .contains("expected text or json"));
        assert!(global(&strings(&["--bogus", "state"]))
            .unwrap_err()
            .contains("unknown global flag --bogus"));
    }

    #[test]
    fn command_flags_take_values_inline_or_next() {
        let p = parse(
            "create",
            &strings(&["-b", "/b", "--pid-file=/p", "--no-pivot", "id"]),
            &["b", "pid-file"],
            &["no-pivot"],
        )
        .unwrap();
        assert_eq!(p.value("b"), Some("/b"));
        assert_eq!(p.value("pid-file"), Some("/p"));
        assert!(p.flag("no-pivot"));
        assert_eq!(p.id().unwrap(), "id");
        assert!(parse("start", &[], &[], &[])
            .unwrap()
            .id()
            .unwrap_err()
            .contains("the container id is missing"));
    }

    #[test]
    fn signals_by_name_with_or_without_sig_or_by_number() {
        assert_eq!(signal("TERM").unwrap(), libc::SIGTERM);
        assert_eq!(signal("SIGKILL").unwrap(), libc::SIGKILL);
        assert_eq!(signal("9").unwrap(), 9);
        assert!(signal("0").is_err());
        assert!(signal("SIGNOPE").unwrap_err().contains("unknown signal"));
    }
}
