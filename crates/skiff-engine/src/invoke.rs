//! What a core module's run calls, as `wasmtime run` decides it: `_initialize` if exported,
//! then `--invoke`'s function, else `""` (emscripten's command convention), else `_start`.
//! Arguments and results follow wasmtime's syntax, so a script written for `wasmtime run
//! --invoke` gets the same output from skiff.

use crate::error::RunError;
use wasmtime::{Func, Instance, Module, Store, Val, ValType};

/// The function a run calls after `_initialize`.
pub(crate) enum Call {
    /// `""`, else `_start`.
    Main,
    /// `--invoke NAME ARGS`, its arguments parsed against its parameter types.
    Invoke { name: String, args: Vec<Val> },
}

impl Call {
    /// Check `name` and parse `args` against the module's export before anything is
    /// instantiated: a typo costs no start-up and runs no guest code. Arguments beyond the
    /// function's parameters are left to the guest's argv, as wasmtime leaves them.
    pub(crate) fn parse(module: &Module, name: &str, args: &[String]) -> Result<Call, RunError> {
        let usage = RunError::Invoke;
        let ty = match module.get_export(name) {
            Some(wasmtime::ExternType::Func(ty)) => ty,
            Some(_) => return Err(usage(format!("export `{name}` is not a function"))),
            None => {
                return Err(usage(format!(
                    "no function named `{name}`; `skiff inspect` lists the exported functions"
                )))
            }
        };
        let mut given = args.iter();
        let mut vals = Vec::new();
        for (i, param) in ty.params().enumerate() {
            let Some(text) = given.next() else {
                return Err(usage(format!(
                    "`{name}` takes {} arguments, {} given",
                    ty.params().len(),
                    args.len()
                )));
            };
            let bad = |e: &dyn std::fmt::Display| {
                usage(format!(
                    "argument {} of `{name}` ({param}): `{text}`: {e}",
                    i + 1
                ))
            };
            vals.push(match param {
                // Decimal, or hexadecimal with 0x, as wasmtime reads them.
                ValType::I32 => Val::I32(match hex(text) {
                    Some(h) => i32::from_str_radix(h, 16).map_err(|e| bad(&e))?,
                    None => text.parse().map_err(|e| bad(&e))?,
                }),
                ValType::I64 => Val::I64(match hex(text) {
                    Some(h) => i64::from_str_radix(h, 16).map_err(|e| bad(&e))?,
                    None => text.parse().map_err(|e| bad(&e))?,
                }),
                ValType::F32 => Val::F32(text.parse::<f32>().map_err(|e| bad(&e))?.to_bits()),
                ValType::F64 => Val::F64(text.parse::<f64>().map_err(|e| bad(&e))?.to_bits()),
                _ => {
                    return Err(bad(
                        &"only i32, i64, f32 and f64 can be given on the command line",
                    ))
                }
            });
        }
        Ok(Call::Invoke {
            name: name.to_string(),
            args: vals,
        })
    }

    /// Run `_initialize` (if any) and then the call; the results, one line each.
    pub(crate) async fn call<T: Send>(
        self,
        store: &mut Store<T>,
        instance: &Instance,
    ) -> wasmtime::Result<Vec<String>> {
        if let Some(init) = instance.get_func(&mut *store, "_initialize") {
            init.typed::<(), ()>(&*store)?
                .call_async(&mut *store, ())
                .await?;
        }
        let (func, args): (Func, Vec<Val>) = match self {
            Call::Invoke { name, args } => match instance.get_func(&mut *store, &name) {
                Some(f) => (f, args),
                None => wasmtime::bail!("no function named `{name}`"),
            },
            Call::Main => match instance
                .get_func(&mut *store, "")
                .or_else(|| instance.get_func(&mut *store, "_start"))
            {
                Some(f) => (f, Vec::new()),
                None => wasmtime::bail!("the module exports neither `_start` nor `\"\"`"),
            },
        };
        let ty = func.ty(&*store);
        let mut results = vec![Val::I32(0); ty.results().len()];
        func.call_async(&mut *store, &args, &mut results).await?;
        Ok(results.iter().map(print).collect())
    }
}

fn hex(text: &str) -> Option<&str> {
    text.strip_prefix("0x").or_else(|| text.strip_prefix("0X"))
}

/// A result as `wasmtime run --invoke` prints it.
fn print(v: &Val) -> String {
    match v {
        Val::I32(i) => i.to_string(),
        Val::I64(i) => i.to_string(),
        Val::F32(f) => f32::from_bits(*f).to_string(),
        Val::F64(f) => f64::from_bits(*f).to_string(),
        Val::V128(v) => v.as_u128().to_string(),
        Val::ExternRef(None) => "<null externref>".into(),
        Val::ExternRef(Some(_)) => "<externref>".into(),
        Val::FuncRef(None) => "<null funcref>".into(),
        Val::FuncRef(Some(_)) => "<funcref>".into(),
        Val::AnyRef(None) => "<null anyref>".into(),
        Val::AnyRef(Some(_)) => "<anyref>".into(),
        Val::ExnRef(None) => "<null exnref>".into(),
        Val::ExnRef(Some(_)) => "<exnref>".into(),
        Val::ContRef(None) => "<null contref>".into(),
        Val::ContRef(Some(_)) => "<contref>".into(),
    }
}
