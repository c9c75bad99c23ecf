//! Instantiate-to-ready of the hello HTTP component, in process: a fresh `Store` and instance
//! from the app's `InstancePre`, as each request gets, with the pooling allocator on and off.
//! Code comes from the compile cache (precompiled), as it does in `skiff serve`. `pooling-p2`
//! is the same handler built for wasm32-wasip2 (no preview-1 adapter inside the component):
//! the difference is what the adapter's core instance and its wiring cost per request.
//!
//!   cargo bench -p skiff-engine --bench instantiate

use criterion::{criterion_group, criterion_main, Criterion};
use skiff_engine::http::{HttpApp, HttpAppConfig, HttpLimits};
use skiff_engine::{AllocatorChoice, Engine, EngineConfig};

fn app(pooling: bool, cache: &std::path::Path, guest: &str) -> HttpApp {
    let allocator = if pooling {
        AllocatorChoice::Pooling {
            max_instances: 16,
            max_memory: HttpLimits::DEFAULT_MEMORY,
        }
    } else {
        AllocatorChoice::OnDemand
    };
    let engine = Engine::new(&EngineConfig {
        cache_dir: Some(cache.to_path_buf()),
        allocator,
        ..EngineConfig::default()
    })
    .expect("engine");
    assert_eq!(
        engine.is_pooling(),
        pooling,
        "the pool could not be reserved"
    );
    let path = format!(
        "{}/../../guests/wasm/{guest}",
        std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo")
    );
    let wasm = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    engine.load(&wasm).expect("compile once");
    let program = engine.load(&wasm).expect("load from the cache");
    HttpApp::new(
        &engine,
        &program,
        HttpAppConfig {
            name: "hello".into(),
            sandbox: Default::default(),
            limits: HttpLimits::default(),
        },
    )
    .expect("app")
}

fn instantiate(c: &mut Criterion) {
    let cache = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("instantiate-to-ready");
    for (name, pooling, guest) in [
        ("pooling", true, "http-hello.wasm"),
        ("pooling-p2", true, "http-hello-p2.wasm"),
        ("on-demand", false, "http-hello.wasm"),
    ] {
        let app = app(pooling, cache.path(), guest);
        group.bench_function(name, |b| {
            b.iter(|| rt.block_on(app.instantiate_only()).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, instantiate);
criterion_main!(benches);
