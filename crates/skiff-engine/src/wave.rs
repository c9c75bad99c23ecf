//! `--invoke` for components, in wasmtime's syntax: the call is written in WAVE (the WebAssembly
//! Value Encoding), `NAME(ARG, ...)`, its arguments read against the function's parameter types
//! and its results printed one a line in WAVE, as `wasmtime run --invoke 'add(1, 2)'` prints
//! them. NAME is a function the component exports, or one an interface it exports exports
//! (the first such, as wasmtime looks it up).
//!
//! wasmtime's own WAVE support is behind its `wave` feature, which would rebuild wasmtime and
//! everything above it; the value types a command line can carry are few, so this reads and
//! writes them itself: bool, integers, floats (`nan`, `inf`, `-inf`), char, string, list,
//! tuple, record, enum, variant, option (`some(x)` or a bare `x`, `none`), result (`ok(x)`, `err(x)`, bare
//! `ok`/`err`) and flags (`{a, b}`). Resources, streams and futures cannot be written on a
//! command line and are refused by name.

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Func, Instance, Type, Val};
use wasmtime::{AsContextMut, Store};

/// A parsed `NAME(ARGS)`, before its arguments are typed.
#[derive(Debug)]
pub(crate) struct Call {
    pub(crate) name: String,
    args: String,
}

impl Call {
    /// Split `NAME(ARGS)`; a bare NAME is a call with no arguments.
    pub(crate) fn parse(text: &str) -> Result<Call, String> {
        let text = text.trim();
        let Some(open) = text.find('(') else {
            return Ok(Call {
                name: text.to_string(),
                args: String::new(),
            });
        };
        let Some(args) = text[open + 1..].strip_suffix(')') else {
            return Err(format!(
                "`{text}`: a component's function is invoked as NAME(ARG, ...), e.g. 'add(1, 2)'"
            ));
        };
        Ok(Call {
            name: text[..open].trim().to_string(),
            args: args.to_string(),
        })
    }

    /// Find the function, read the arguments by its types, call it; the results in WAVE.
    pub(crate) async fn call<T: Send>(
        &self,
        store: &mut Store<T>,
        component: &Component,
        instance: &Instance,
    ) -> Result<Vec<String>, CallError> {
        let func = self
            .func(&mut *store, component, instance)
            .map_err(CallError::Usage)?;
        let ty = func.ty(&*store);
        let params: Vec<(String, Type)> = ty
            .params()
            .map(|(name, ty)| (name.to_string(), ty))
            .collect();
        let arity = |what: &str| {
            let sig: Vec<String> = params
                .iter()
                .map(|(n, t)| format!("{n}: {}", type_name(t)))
                .collect();
            CallError::Usage(format!(
                "`{}` takes {} argument(s) ({}); {what} were given",
                self.name,
                params.len(),
                sig.join(", ")
            ))
        };
        let mut p = Parser::new(&self.args);
        let mut args = Vec::new();
        for (i, (pname, pty)) in params.iter().enumerate() {
            if i > 0 && !p.eat(',') {
                p.skip_ws();
                if p.at_end() {
                    return Err(arity("fewer"));
                }
                p.expect(',').map_err(|e| self.bad(pname, e))?;
            }
            p.skip_ws();
            if p.at_end() {
                return Err(arity("fewer"));
            }
            args.push(p.value(pty).map_err(|e| self.bad(pname, e))?);
        }
        p.eat(',');
        p.skip_ws();
        if !p.at_end() {
            return Err(arity("more"));
        }
        let mut results = vec![Val::Bool(false); ty.results().len()];
        func.call_async(&mut *store, &args, &mut results)
            .await
            .map_err(CallError::Guest)?;
        Ok(results.iter().map(print).collect())
    }

    fn bad(&self, param: &str, e: String) -> CallError {
        CallError::Usage(format!("argument `{param}` of `{}`: {e}", self.name))
    }

    /// The exported function named so: at the component's top level, else in the first
    /// exported interface that has one.
    fn func<T>(
        &self,
        store: &mut Store<T>,
        component: &Component,
        instance: &Instance,
    ) -> Result<Func, String> {
        let missing = || {
            format!(
                "the component exports no function `{}`; `skiff inspect` lists its exports",
                self.name
            )
        };
        let engine = store.engine().clone();
        let ty = component.component_type();
        let is_func = |item: &ComponentItem| matches!(item, ComponentItem::ComponentFunc(_));
        let iface = if ty
            .get_export(&engine, &self.name)
            .is_some_and(|e| is_func(&e.ty))
        {
            None
        } else {
            let found = ty.exports(&engine).find_map(|(name, e)| match &e.ty {
                ComponentItem::ComponentInstance(i)
                    if i.get_export(&engine, &self.name)
                        .is_some_and(|e| is_func(&e.ty)) =>
                {
                    Some(name.to_string())
                }
                _ => None,
            });
            Some(found.ok_or_else(missing)?)
        };
        let parent = match &iface {
            Some(iface) => Some(
                instance
                    .get_export_index(store.as_context_mut(), None, iface)
                    .ok_or_else(missing)?,
            ),
            None => None,
        };
        let index = instance
            .get_export_index(store.as_context_mut(), parent.as_ref(), &self.name)
            .ok_or_else(missing)?;
        instance
            .get_func(store.as_context_mut(), index)
            .ok_or_else(missing)
    }
}

/// How an invocation failed: the command line (before any guest code ran), or the guest.
#[derive(Debug)]
pub(crate) enum CallError {
    Usage(String),
    Guest(wasmtime::Error),
}

struct Parser<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> Parser<'a> {
    fn new(s: &'a str) -> Self {
        Parser { s, at: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.s[self.at..]
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.at = self.s.len() - trimmed.len();
    }

    fn at_end(&self) -> bool {
        self.rest().is_empty()
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.rest().starts_with(c) {
            self.at += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected `{c}` at `{}`", self.rest()))
        }
    }

    /// A bare word: a number, a label (`%`-escaped or kebab-case), `true`, `nan`, `-inf`.
    fn word(&mut self) -> &'a str {
        self.skip_ws();
        let rest = self.rest();
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.+%".contains(c)))
            .unwrap_or(rest.len());
        self.at += end;
        &rest[..end]
    }

    fn label(&mut self) -> Result<String, String> {
        let w = self.word();
        if w.is_empty() {
            return Err(format!("expected a name at `{}`", self.rest()));
        }
        Ok(w.trim_start_matches('%').to_string())
    }

    /// Comma-separated items up to `close`, a trailing comma allowed.
    fn items(
        &mut self,
        close: char,
        mut item: impl FnMut(&mut Self) -> Result<(), String>,
    ) -> Result<(), String> {
        loop {
            if self.eat(close) {
                return Ok(());
            }
            item(self)?;
            if !self.eat(',') {
                return self.expect(close);
            }
        }
    }

    fn value(&mut self, ty: &Type) -> Result<Val, String> {
        self.skip_ws();
        let start = self.at;
        let bad = |p: &Self, what: &str| {
            format!(
                "`{}` is not {what}",
                p.s[start..p.at.max(start + 1).min(p.s.len())].trim()
            )
        };
        macro_rules! int {
            ($v:ident, $t:ty) => {{
                let w = self.word();
                Val::$v(w.parse::<$t>().map_err(|e| format!("`{w}`: {e}"))?)
            }};
        }
        Ok(match ty {
            Type::Bool => match self.word() {
                "true" => Val::Bool(true),
                "false" => Val::Bool(false),
                _ => return Err(bad(self, "a bool (true or false)")),
            },
            Type::S8 => int!(S8, i8),
            Type::U8 => int!(U8, u8),
            Type::S16 => int!(S16, i16),
            Type::U16 => int!(U16, u16),
            Type::S32 => int!(S32, i32),
            Type::U32 => int!(U32, u32),
            Type::S64 => int!(S64, i64),
            Type::U64 => int!(U64, u64),
            Type::Float32 => Val::Float32(float(self.word())? as f32),
            Type::Float64 => Val::Float64(float(self.word())?),
            Type::Char => {
                let (c, _) = self.quoted('\'')?;
                let mut chars = c.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => Val::Char(c),
                    _ => return Err(format!("'{c}' is not one char")),
                }
            }
            Type::String => Val::String(self.quoted('"')?.0),
            Type::List(l) => {
                self.expect('[')?;
                let ty = l.ty();
                let mut v = Vec::new();
                self.items(']', |p| {
                    v.push(p.value(&ty)?);
                    Ok(())
                })?;
                Val::List(v)
            }
            Type::Tuple(t) => {
                self.expect('(')?;
                let mut v = Vec::new();
                for (i, ty) in t.types().enumerate() {
                    if i > 0 {
                        self.expect(',')?;
                    }
                    v.push(self.value(&ty)?);
                }
                self.eat(',');
                self.expect(')')?;
                Val::Tuple(v)
            }
            Type::Record(r) => {
                self.expect('{')?;
                let fields: Vec<_> = r.fields().map(|f| (f.name.to_string(), f.ty)).collect();
                let mut got: Vec<Option<Val>> = vec![None; fields.len()];
                self.items('}', |p| {
                    let name = p.label()?;
                    let i = fields
                        .iter()
                        .position(|(n, _)| *n == name)
                        .ok_or_else(|| format!("the record has no field `{name}`"))?;
                    p.expect(':')?;
                    got[i] = Some(p.value(&fields[i].1)?);
                    Ok(())
                })?;
                let mut v = Vec::new();
                for ((name, ty), val) in fields.into_iter().zip(got) {
                    match (val, ty) {
                        (Some(val), _) => v.push((name, val)),
                        // WAVE lets an option field be left out: none.
                        (None, Type::Option(_)) => v.push((name, Val::Option(None))),
                        (None, _) => return Err(format!("field `{name}` is missing")),
                    }
                }
                Val::Record(v)
            }
            Type::Enum(e) => {
                let name = self.label()?;
                if !e.names().any(|n| n == name) {
                    return Err(format!("`{name}` is not one of the enum's cases"));
                }
                Val::Enum(name)
            }
            Type::Variant(v) => {
                let name = self.label()?;
                let case = v
                    .cases()
                    .find(|c| c.name == name)
                    .ok_or_else(|| format!("`{name}` is not one of the variant's cases"))?;
                let payload = self.payload(case.ty.as_ref())?;
                Val::Variant(name, payload)
            }
            // `some(x)` or `none`; WAVE also takes a bare `x` for `some(x)`.
            Type::Option(o) => {
                let at = self.at;
                match self.word() {
                    "none" => Val::Option(None),
                    "some" if self.rest().trim_start().starts_with('(') => {
                        Val::Option(self.payload(Some(&o.ty()))?)
                    }
                    _ => {
                        self.at = at;
                        Val::Option(Some(Box::new(self.value(&o.ty())?)))
                    }
                }
            }
            Type::Result(r) => match self.label()?.as_str() {
                "ok" => Val::Result(Ok(self.payload(r.ok().as_ref())?)),
                "err" => Val::Result(Err(self.payload(r.err().as_ref())?)),
                _ => return Err(bad(self, "a result (ok(x) or err(x))")),
            },
            Type::Flags(f) => {
                self.expect('{')?;
                let mut set = Vec::new();
                self.items('}', |p| {
                    let name = p.label()?;
                    if !f.names().any(|n| n == name) {
                        return Err(format!("`{name}` is not one of the flags"));
                    }
                    set.push(name);
                    Ok(())
                })?;
                Val::Flags(set)
            }
            other => {
                return Err(format!(
                    "a {} cannot be written on the command line",
                    type_name(other)
                ))
            }
        })
    }

    /// `(value)` for a case with a payload; nothing for one without.
    fn payload(&mut self, ty: Option<&Type>) -> Result<Option<Box<Val>>, String> {
        match ty {
            None => Ok(None),
            Some(ty) => {
                self.expect('(')?;
                let v = self.value(ty)?;
                self.expect(')')?;
                Ok(Some(Box::new(v)))
            }
        }
    }

    /// A quoted string or char, with WAVE's escapes (`\n \t \r \\ \" \' \u{X}`).
    fn quoted(&mut self, q: char) -> Result<(String, ()), String> {
        self.expect(q)?;
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                c if c == q => {
                    self.at += i + 1;
                    return Ok((out, ()));
                }
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some('r') => out.push('\r'),
                    Some('\\') => out.push('\\'),
                    Some('"') => out.push('"'),
                    Some('\'') => out.push('\''),
                    Some('u') => {
                        let hex: String = chars
                            .by_ref()
                            .map(|(_, c)| c)
                            .skip_while(|c| *c == '{')
                            .take_while(|c| *c != '}')
                            .collect();
                        let c = u32::from_str_radix(&hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or_else(|| format!("\\u{{{hex}}} is not a char"))?;
                        out.push(c);
                    }
                    other => return Err(format!("unknown escape \\{}", other.unwrap_or(' '))),
                },
                c => out.push(c),
            }
        }
        Err(format!("unterminated {q}"))
    }
}

fn float(w: &str) -> Result<f64, String> {
    match w {
        "nan" => Ok(f64::NAN),
        "inf" => Ok(f64::INFINITY),
        "-inf" => Ok(f64::NEG_INFINITY),
        _ => w.parse().map_err(|e| format!("`{w}`: {e}")),
    }
}

fn type_name(t: &Type) -> &'static str {
    match t {
        Type::Bool => "bool",
        Type::S8 => "s8",
        Type::U8 => "u8",
        Type::S16 => "s16",
        Type::U16 => "u16",
        Type::S32 => "s32",
        Type::U32 => "u32",
        Type::S64 => "s64",
        Type::U64 => "u64",
        Type::Float32 => "f32",
        Type::Float64 => "f64",
        Type::Char => "char",
        Type::String => "string",
        Type::List(_) => "list",
        Type::Map(_) => "map",
        Type::Record(_) => "record",
        Type::Tuple(_) => "tuple",
        Type::Variant(_) => "variant",
        Type::Enum(_) => "enum",
        Type::Option(_) => "option",
        Type::Result(_) => "result",
        Type::Flags(_) => "flags",
        Type::Own(_) | Type::Borrow(_) => "resource",
        Type::Future(_) => "future",
        Type::Stream(_) => "stream",
        Type::ErrorContext => "error-context",
        Type::FixedLengthList(_) => "fixed-length list",
    }
}

/// A value in WAVE, as wasmtime prints an invoked function's results.
fn print(v: &Val) -> String {
    fn quote(s: &str, q: char) -> String {
        let mut out = String::from(q);
        for c in s.chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                '\\' => out.push_str("\\\\"),
                c if c == q => {
                    out.push('\\');
                    out.push(c)
                }
                c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
                c => out.push(c),
            }
        }
        out.push(q);
        out
    }
    // As wasmtime prints them: Rust's Display (`1`, `1.5`, no exponent), WAVE's nan and inf.
    fn float(f: impl std::fmt::Display + Into<f64> + Copy) -> String {
        let x: f64 = f.into();
        if x.is_nan() {
            "nan".into()
        } else if x.is_infinite() {
            if x > 0.0 { "inf" } else { "-inf" }.into()
        } else {
            f.to_string()
        }
    }
    let list =
        |open: &str, items: Vec<String>, close: &str| format!("{open}{}{close}", items.join(", "));
    let payload = |name: &str, p: &Option<Box<Val>>| match p {
        Some(v) => format!("{name}({})", print(v)),
        None => name.to_string(),
    };
    match v {
        Val::Bool(b) => b.to_string(),
        Val::S8(i) => i.to_string(),
        Val::U8(i) => i.to_string(),
        Val::S16(i) => i.to_string(),
        Val::U16(i) => i.to_string(),
        Val::S32(i) => i.to_string(),
        Val::U32(i) => i.to_string(),
        Val::S64(i) => i.to_string(),
        Val::U64(i) => i.to_string(),
        Val::Float32(f) => float(*f),
        Val::Float64(f) => float(*f),
        Val::Char(c) => quote(&c.to_string(), '\''),
        Val::String(s) => quote(s, '"'),
        Val::List(v) | Val::FixedLengthList(v) => list("[", v.iter().map(print).collect(), "]"),
        Val::Map(v) => list(
            "{",
            v.iter()
                .map(|(k, v)| format!("{}: {}", print(k), print(v)))
                .collect(),
            "}",
        ),
        Val::Record(f) => list(
            "{",
            f.iter()
                .map(|(k, v)| format!("{k}: {}", print(v)))
                .collect(),
            "}",
        ),
        Val::Tuple(v) => list("(", v.iter().map(print).collect(), ")"),
        Val::Variant(name, p) => payload(name, p),
        Val::Enum(name) => name.clone(),
        Val::Option(None) => "none".into(),
        Val::Option(Some(v)) => format!("some({})", print(v)),
        Val::Result(Ok(p)) => payload("ok", p),
        Val::Result(Err(p)) => payload("err", p),
        Val::Flags(f) => list("{", f.clone(), "}"),
        Val::Resource(_) => "<resource>".into(),
        Val::Future(_) => "<future>".into(),
        Val::Stream(_) => "<stream>".into(),
        Val::ErrorContext(_) => "<error-context>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_print_as_wasmtime_prints_them() {
        let s = |v: &str| Val::String(v.into());
        assert_eq!(print(&s("wörld \"q\"\n")), r#""wörld \"q\"\n""#);
        assert_eq!(print(&Val::Char('\'')), r"'\''");
        assert_eq!(print(&Val::Float64(1.0)), "1");
        assert_eq!(print(&Val::Float32(0.5)), "0.5");
        assert_eq!(print(&Val::Float64(f64::NEG_INFINITY)), "-inf");
        assert_eq!(print(&Val::List(vec![s("a"), s("b")])), r#"["a", "b"]"#);
        assert_eq!(
            print(&Val::Record(vec![
                ("x".into(), Val::U8(1)),
                ("y".into(), Val::Option(None))
            ])),
            "{x: 1, y: none}"
        );
        assert_eq!(
            print(&Val::Result(Err(Some(Box::new(Val::Enum("busy".into())))))),
            "err(busy)"
        );
        assert_eq!(print(&Val::Result(Ok(None))), "ok");
        assert_eq!(
            print(&Val::Flags(vec!["read".into(), "write".into()])),
            "{read, write}"
        );
        assert_eq!(
            print(&Val::Tuple(vec![Val::Bool(true), Val::S64(-2)])),
            "(true, -2)"
        );
    }

    #[test]
    fn a_call_splits_into_name_and_arguments() {
        let c = Call::parse(" add(1, 2) ").unwrap();
        assert_eq!((c.name.as_str(), c.args.as_str()), ("add", "1, 2"));
        let c = Call::parse("run").unwrap();
        assert_eq!((c.name.as_str(), c.args.as_str()), ("run", ""));
        assert!(Call::parse("add(1, 2")
            .unwrap_err()
            .contains("NAME(ARG, ...)"));
    }
}
