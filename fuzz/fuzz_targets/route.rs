//! Route syntax `[HOST]/PREFIX` (crates/skiff-http/src/route.rs, compiled here from the same file:
//! depending on skiff-http would build wasmtime with fuzzing instrumentation). Round trip: a
//! parsed route displays as text that parses back to it. Then the router: add, pick, remove.
//! Input: `ROUTE \n HOST \n PATH`.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../crates/skiff-http/src/route.rs"]
mod route;
use route::{Route, Router};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.splitn(3, '\n');
    let spec = lines.next().unwrap_or("");
    let host = lines.next().filter(|h| !h.is_empty());
    let path = lines.next().unwrap_or("/");
    let Ok(r) = Route::parse(spec) else { return };
    let shown = r.to_string();
    let again = Route::parse(&shown)
        .unwrap_or_else(|e| panic!("{spec:?} parsed, but its display {shown:?} does not: {e}"));
    assert_eq!(again, r, "{spec:?} -> {shown:?}");
    let mut router = Router::default();
    router
        .add(r.clone(), 1usize)
        .expect("an empty router takes any route");
    router.add(Route::any(), 2usize).ok();
    let _ = router.pick(host, path);
    assert_eq!(router.remove(&r), Some(1));
});
