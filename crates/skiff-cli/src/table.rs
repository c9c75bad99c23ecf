//! Listings (`ps`, `images`): one table printer, and `--format` as Docker takes it: `table`,
//! `json`, or a Go-style template such as `{{.Name}}\t{{.Status}}` (a `table ` prefix keeps the
//! header). A template names the table's columns (`{{.Repository}}:{{.Tag}}`), case-insensitive,
//! with Docker's own names accepted where skiff's differ (`{{.Names}}`, `{{.RunningFor}}`).

use crate::term::for_terminal;

#[derive(Debug, Clone, PartialEq)]
pub enum ListFormat {
    Table,
    Json,
    Template { header: bool, text: String },
}

/// `--format` of a listing verb.
pub fn parse_list_format(s: &str) -> Result<ListFormat, String> {
    match s {
        "table" => Ok(ListFormat::Table),
        "json" => Ok(ListFormat::Json),
        t if t.contains("{{") => {
            let (header, text) = match t.strip_prefix("table ") {
                Some(rest) => (true, rest),
                None => (false, t),
            };
            // As Docker: `\t` and `\n` typed in a shell argument mean tab and newline.
            let text = text.replace("\\t", "\t").replace("\\n", "\n");
            Ok(ListFormat::Template { header, text })
        }
        _ => Err(format!(
            "invalid format {s:?}: expected table, json or a template such as '{{{{.Name}}}}\\t{{{{.Status}}}}'"
        )),
    }
}

/// Docker's field names that skiff's columns call otherwise.
const ALIASES: &[(&str, &str)] = &[
    ("names", "name"),
    ("runningfor", "started"),
    ("createdsince", "created"),
    ("createdat", "created"),
    ("state", "status"),
    // docker stats' fields.
    ("container", "name"),
    ("cpuperc", "cpu"),
    ("memusage", "memusagelimit"),
    ("memperc", "mem"),
    ("pids", "instances"),
];

fn key(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase()
}

/// One row through a template; `header` names the row's cells.
pub fn render(template: &str, header: &[String], row: &[String]) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("template {template:?}: a {{{{ is not closed"))?;
        let field = after[..end].trim();
        let name = field.strip_prefix('.').ok_or_else(|| {
            format!("template {template:?}: {{{{{field}}}}} is not a field (fields start with a dot, e.g. {{{{.Name}}}})")
        })?;
        let wanted = key(name);
        let wanted = ALIASES
            .iter()
            .find(|(docker, _)| *docker == wanted)
            .map_or(wanted.clone(), |(_, ours)| ours.to_string());
        let col = header
            .iter()
            .position(|h| key(h) == wanted)
            .ok_or_else(|| {
                let fields: Vec<String> = header.iter().map(|h| format!(".{}", title(h))).collect();
                format!(
                    "template {template:?}: no field .{name}; the fields are {}",
                    fields.join(", ")
                )
            })?;
        out.push_str(&row[col]);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `REPOSITORY` → `Repository`, as a template names it.
fn title(h: &str) -> String {
    let lower = h.to_ascii_lowercase();
    let mut c = lower.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// Prints `rows` (the first is the header) as a table or through a template. Cells are escaped
/// before they are measured: names and images come from API clients and image authors.
pub fn print(format: &ListFormat, rows: &[Vec<String>]) -> anyhow::Result<()> {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| for_terminal(c).into_owned()).collect())
        .collect();
    let Some((header, body)) = rows.split_first() else {
        return Ok(());
    };
    match format {
        ListFormat::Template {
            header: with_header,
            text,
        } => {
            // Rendered on the header even when it is not printed: a wrong field is an error
            // with no rows too, not a silent empty listing.
            let head = render(text, header, header).map_err(anyhow::Error::msg)?;
            if *with_header {
                println!("{head}");
            }
            for r in body {
                println!("{}", render(text, header, r).map_err(anyhow::Error::msg)?);
            }
        }
        ListFormat::Table | ListFormat::Json => {
            let widths: Vec<usize> = (0..header.len())
                .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
                .collect();
            for r in &rows {
                let line: Vec<String> = r
                    .iter()
                    .zip(&widths)
                    .map(|(cell, w)| format!("{cell:<w$}"))
                    .collect();
                println!("{}", line.join("   ").trim_end());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(cols: &[&str]) -> Vec<String> {
        cols.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn templates_name_columns_as_docker_does() {
        let header = h(&["ID", "NAME", "STATUS", "STARTED"]);
        let row = h(&["abc", "job", "Up 3 seconds", "3 seconds ago"]);
        let r = |t: &str| render(t, &header, &row);
        assert_eq!(r("{{.Name}}").unwrap(), "job");
        assert_eq!(r("{{ .Names }}:{{.ID}}").unwrap(), "job:abc");
        assert_eq!(r("{{.RunningFor}}").unwrap(), "3 seconds ago");
        let stats = h(&["NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "INSTANCES"]);
        let sample = h(&["api", "1.00%", "64kB / 134MB", "0.05%", "2"]);
        assert_eq!(
            render(
                "{{.Container}} {{.CPUPerc}} {{.MemUsage}} {{.MemPerc}} {{.PIDs}}",
                &stats,
                &sample
            )
            .unwrap(),
            "api 1.00% 64kB / 134MB 0.05% 2"
        );
        assert!(r("{{.Ports}}")
            .unwrap_err()
            .contains("the fields are .Id, .Name"));
        assert!(r("{{Name}}").unwrap_err().contains("start with a dot"));
        assert!(r("{{.Name").unwrap_err().contains("not closed"));
    }

    #[test]
    fn formats() {
        assert_eq!(parse_list_format("json"), Ok(ListFormat::Json));
        assert_eq!(
            parse_list_format("table {{.Name}}\\t{{.Status}}"),
            Ok(ListFormat::Template {
                header: true,
                text: "{{.Name}}\t{{.Status}}".into()
            })
        );
        assert!(parse_list_format("yaml").unwrap_err().contains("template"));
    }
}
