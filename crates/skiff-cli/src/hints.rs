//! What to say about a flag `skiff run` does not know.
//!
//! `run` passes everything after the file to the guest, so clap takes an unknown flag *before* the
//! file for the file itself and cannot suggest anything. Two kinds of unknown flags reach here: a
//! typo of one of skiff's own (`--memroy`), and a Docker flag a Docker user types by habit (`--rm`,
//! `-it`, `-p`). The first gets "did you mean"; the second what to use instead, in one line.

use clap::CommandFactory;

/// Docker `run` flags skiff's `run` does not take, and what to do instead.
const DOCKER_RUN: &[(&[&str], &str)] = &[
    (
        &["-P", "--publish-all", "--expose"],
        "a Wasm binary declares no ports: publish an HTTP component with -p HOST_PORT:PORT, or serve it with `skiff serve` / `skiff deploy`",
    ),
    (
        &["-t", "--tty"],
        "a guest gets no terminal; -i alone gives it skiff's stdin",
    ),
    (&["-m"], "the memory limit is --memory SIZE, e.g. --memory 64m"),
    (&["--mount"], "mount a host directory with -v HOST:GUEST[:ro]"),
    (
        &["--dir"],
        "(wasmtime's --dir) mount a host directory with -v HOST:GUEST[:ro]",
    ),
    (
        &["-w", "--workdir"],
        "a WASI guest has no working directory to set: mount what it needs with -v and use absolute paths",
    ),
    (
        &["--network", "--net=host"],
        "sockets and name lookup are granted with --net (there are no Docker networks)",
    ),
    (
        &["--entrypoint"],
        "a Wasm binary has one entry point (_start or wasi:cli/run); give the guest's arguments after the file",
    ),
    (
        &["-u", "--user", "--privileged", "--cap-add", "--cap-drop", "--security-opt"],
        "a guest has no users or capabilities to change: it is granted nothing unless a flag grants it",
    ),
];

/// The error for `skiff run FLAG …` where FLAG is not one of `run`'s.
pub fn unknown_run_flag(flag: &str) -> String {
    let name = flag.split_once('=').map_or(flag, |(n, _)| n);
    if let Some(advice) = docker_advice(flag, name) {
        return format!("unknown flag {name}: {advice}");
    }
    match closest_run_flag(name) {
        Some(known) => format!("unknown flag {name}: did you mean {known}? (see skiff run --help)"),
        None => format!("unknown flag {name} (see skiff run --help)"),
    }
}

fn docker_advice(flag: &str, name: &str) -> Option<&'static str> {
    let found = |f: &str| {
        DOCKER_RUN
            .iter()
            .find(|(names, _)| names.contains(&f))
            .map(|(_, advice)| *advice)
    };
    // `--net=host` is listed whole; `-it` and `-ti` are -i (which skiff has) with -t.
    found(flag).or_else(|| found(name)).or_else(|| {
        let short = name.strip_prefix('-').filter(|s| !s.starts_with('-'))?;
        short
            .chars()
            .filter(|c| *c != 'i' && *c != 'd' && *c != 'e' && *c != 'v')
            .find_map(|c| found(&format!("-{c}")))
    })
}

/// One of `run`'s own long flags that `name` is most likely a typo of.
fn closest_run_flag(name: &str) -> Option<String> {
    let typed = name.strip_prefix("--")?;
    let cli = crate::cli::Cli::command();
    let run = cli.find_subcommand("run")?;
    run.get_arguments()
        .chain(cli.get_arguments())
        .filter_map(|a| a.get_long())
        .map(|long| (strsim::jaro(typed, long), long))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, long)| format!("--{long}"))
}

#[cfg(test)]
mod tests {
    use super::unknown_run_flag;

    #[test]
    fn typos_get_the_flag_they_meant() {
        assert!(unknown_run_flag("--memroy").contains("did you mean --memory?"));
        assert!(unknown_run_flag("--timout=5s").contains("did you mean --timeout?"));
        assert!(!unknown_run_flag("--zzzzzz").contains("did you mean"));
    }

    #[test]
    fn docker_flags_say_what_to_use_instead() {
        for (flag, advice) in [
            ("-P", "-p HOST_PORT:PORT"),
            ("--expose=80", "skiff serve"),
            ("-it", "no terminal"),
            ("-ti", "no terminal"),
            ("-t", "no terminal"),
            ("-m", "--memory"),
            ("--mount", "-v HOST:GUEST"),
            ("-w", "absolute paths"),
            ("--network", "--net"),
            ("--net=host", "--net"),
            ("--entrypoint", "one entry point"),
            ("--dir", "-v HOST:GUEST"),
        ] {
            let msg = unknown_run_flag(flag);
            assert!(msg.contains(advice), "{flag}: {msg}");
            assert!(!msg.contains("go before the file"), "{flag}: {msg}");
        }
    }
}
