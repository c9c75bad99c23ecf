//! `hello`: prints what it sees of its sandbox (args, env, files), so tests can assert on it.
use std::io::Write;

fn main() {
    let mut out = String::new();
    out.push_str("hello from skiff\n");
    for (i, a) in std::env::args_os().enumerate() {
        out.push_str(&format!("arg[{i}]={}\n", a.to_string_lossy()));
    }
    let name = std::env::var("NAME").unwrap_or_else(|_| "(unset)".to_string());
    out.push_str(&format!("NAME={name}\n"));
    out.push_str(&format!("env count: {}\n", std::env::vars_os().count()));
    match std::fs::read_to_string("/data/in.txt") {
        Ok(s) => out.push_str(&format!("read: {}\n", s.trim())),
        Err(e) => out.push_str(&format!("read: error: {e}\n")),
    }
    if std::path::Path::new("/out").is_dir() {
        match std::fs::write("/out/out.txt", "written by hello\n") {
            Ok(()) => out.push_str("write: ok\n"),
            Err(e) => out.push_str(&format!("write: error: {e}\n")),
        }
    } else {
        out.push_str("write: skipped (no /out)\n");
    }
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
}
