//! Text from outside skiff (an image's annotations, a binary's export names, a daemon's answer,
//! an error quoting either) made safe to print on a terminal.
//!
//! An image is untrusted input: `ESC [ 2 J` in an annotation would clear the screen of whoever
//! runs `skiff inspect`, an OSC sequence could retitle the window, plant a hyperlink or write the
//! clipboard (OSC 52), and a bare newline or carriage return could forge a line of the report
//! ("Capabilities: (none)"). So every human-readable printer passes such text through
//! [`for_terminal`], which writes each control character as a visible escape. `--format json`
//! is exact instead: JSON escapes C0 controls itself, and [`json`] escapes the few characters it
//! leaves raw, so a parser still reads back the very same string.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as is: C0 controls (tab, newline and carriage return
/// included: a value is printed on one line, in a column, and a tab would break the column),
/// DEL, C1 controls (U+0080–U+009F: U+009B is a one-character CSI on terminals that honour
/// 8-bit controls), and the bidirectional overrides and isolates, which reorder what is shown
/// ("Trojan Source", CVE-2021-42574).
fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with each unsafe character written as `\x1b` (below U+0080) or `\u{9b}` (above);
/// borrowed, with no copy, when there is none (the common case).
///
/// A backslash is left as it is: a literal `\x1b` typed into an annotation then looks like an
/// escaped ESC, which is harmless (it is four printable characters either way); `--format json`
/// tells them apart.
pub fn for_terminal(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !is_unsafe(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// Pretty JSON for stdout: serde_json escapes C0 controls, `"` and `\`; the C1 controls and
/// bidirectional overrides it leaves raw are written as `\uXXXX` too. Same JSON value, byte for
/// byte safe on a terminal. (Outside strings JSON is ASCII, so only strings are touched.)
pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    // The ASCII controls left are JSON's own line breaks; serde escaped those in strings.
    let raw = |c: char| !c.is_ascii() && is_unsafe(c);
    let text = serde_json::to_string_pretty(value)?;
    if !text.chars().any(raw) {
        return Ok(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if raw(c) {
            // All in the BMP, so one \uXXXX each.
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Writes a whole generated document (a completion script, a man page) to stdout. A reader that
/// went away ends skiff as `println!`'s would (see `main`): quietly, exit 141.
pub fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            std::process::exit(crate::exit::STDOUT_CLOSED.into())
        }
        r => Ok(r?),
    }
}

/// An error and its causes on one line, each said once. Many library errors print their
/// source in their own message too (`cannot listen on ADDR: Address already in use`, whose
/// source is that same `Address already in use`), and anyhow's `{:#}` then repeats it; a cause
/// already said is left out.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    chain_with(err, |e| e.to_string())
}

/// [`chain`], each cause shown by `show` (the CLI's exit.rs adds the flag that sets a limit).
pub fn chain_with(
    err: &(dyn std::error::Error + 'static),
    show: impl Fn(&(dyn std::error::Error + 'static)) -> String,
) -> String {
    let mut out = String::new();
    let mut cause = Some(err);
    while let Some(e) = cause {
        let msg = show(e);
        if !msg.is_empty() && !out.contains(&msg) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&msg);
        }
        cause = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cause_already_said_is_not_repeated() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address already in use");
        let err = anyhow::Error::new(io)
            .context("cannot listen on 127.0.0.1:80: Address already in use")
            .context("serve");
        assert_eq!(
            super::chain(err.as_ref()),
            "serve: cannot listen on 127.0.0.1:80: Address already in use"
        );
    }

    use super::*;

    #[test]
    fn controls_become_visible_escapes() {
        assert!(matches!(for_terminal("plain: ünïcödé"), Cow::Borrowed(_)));
        assert_eq!(
            for_terminal("a\x1b[2Jb\tc\nd\re\x7f\u{9b}31m\u{202e}"),
            "a\\x1b[2Jb\\x09c\\x0ad\\x0de\\x7f\\u{9b}31m\\u{202e}"
        );
    }

    #[test]
    fn json_stays_exact() {
        let v = "x\x1b[2J\u{9b}1m\u{202e}y";
        let text = json(&[v]).unwrap();
        assert!(!text.chars().any(|c| is_unsafe(c) && c != '\n'), "{text}");
        let back: Vec<String> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, [v]);
    }
}
