//! `--reuse N`: one instance may serve up to N requests of its app, one after another. Each
//! rule of `skiff-engine/src/http/reuse.rs` has a test here, with the real binary, real curl and
//! the `http-counter` guest, whose answers say which instance served them
//! (`instance=<id> count=<requests it has served> overlap=<another request inside it>`).

mod common;
use common::daemon::Daemon;
use common::guest;
use common::serve::{curl, Reply, Served};
use std::collections::BTreeMap;

fn counter() -> String {
    guest("http-counter.wasm").display().to_string()
}

/// The instance that answered and the requests it had served with this one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    instance: String,
    count: u64,
    overlap: bool,
}

fn seen(r: &Reply) -> Seen {
    assert_eq!(r.status, 200, "{r:?}");
    let field = |name: &str| {
        r.body
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name}= in {:?}", r.body))
            .to_string()
    };
    Seen {
        instance: field("instance"),
        count: field("count").parse().unwrap(),
        overlap: field("overlap") == "1",
    }
}

fn get(s: &Served, path: &str) -> Seen {
    seen(&s.get(path))
}

#[test]
fn state_persists_across_the_requests_of_one_instance() {
    // One instance at a time, so every request finds the one the previous left.
    let s = Served::start(&[
        "--admin-listen",
        "127.0.0.1:0",
        "--max-concurrent",
        "1",
        "--reuse",
        "5",
        &format!("c={}", counter()),
    ]);
    let first = get(&s, "/");
    assert_eq!(first.count, 1);
    for n in 2..=5 {
        let r = get(&s, "/");
        assert_eq!((&r.instance, r.count), (&first.instance, n), "request {n}");
    }
    s.wait_metric("skiff_instances_reused_total{app=\"c\"} 4");
}

#[test]
fn an_instance_serves_at_most_n_requests() {
    let s = Served::start(&[
        "--max-concurrent",
        "1",
        "--reuse",
        "3",
        &format!("c={}", counter()),
    ]);
    let counts: Vec<Seen> = (0..7).map(|_| get(&s, "/")).collect();
    assert_eq!(
        counts.iter().map(|r| r.count).collect::<Vec<_>>(),
        [1, 2, 3, 1, 2, 3, 1]
    );
    assert_eq!(counts[0].instance, counts[2].instance);
    assert_ne!(
        counts[2].instance, counts[3].instance,
        "a fresh one after 3"
    );
    assert_ne!(
        counts[5].instance, counts[6].instance,
        "and again after 3 more"
    );
}

#[test]
fn a_trap_ends_the_instance() {
    let s = Served::start(&[
        "--max-concurrent",
        "1",
        "--reuse",
        "100",
        &format!("c={}", counter()),
    ]);
    let a = get(&s, "/");
    assert_eq!(get(&s, "/").count, 2);
    assert_eq!(s.get("/trap").status, 500);
    let b = get(&s, "/");
    assert_eq!(b.count, 1, "the request after a trap starts fresh");
    assert_ne!(a.instance, b.instance);
    assert_eq!(get(&s, "/").count, 2, "and the fresh one is reused again");
}

#[test]
fn a_limit_ends_the_instance_and_each_request_has_its_own_deadline() {
    let s = Served::start(&[
        "--max-concurrent",
        "1",
        "--reuse",
        "100",
        "--memory",
        "16m",
        "--cpu-time",
        "200ms",
        "--timeout",
        "1s",
        &format!("c={}", counter()),
    ]);
    // Each case: a request that reuses a warm instance and hits a limit, then a fresh one.
    for (path, status, why) in [
        // Hangs on request 2 of N in a host call: the wall-clock deadline is per request.
        ("/sleep?n=30000", 504, "timeout"),
        // Spins: the CPU budget is per request, not per instance.
        ("/loop", 504, "cpu time limit"),
        ("/hog", 500, "memory limit"),
    ] {
        let before = get(&s, "/");
        let r = s.get(path);
        assert_eq!(r.status, status, "{path}: {r:?}");
        s.wait_log(why);
        let after = get(&s, "/");
        assert_eq!(after.count, 1, "{path}: the next request starts fresh");
        assert_ne!(after.instance, before.instance, "{path}");
    }
    // The deadline counted from each request's own arrival: a reused instance's third
    // request still gets its whole second.
    let warm = get(&s, "/");
    assert_eq!(warm.count, 2);
    assert_eq!(get(&s, "/sleep?n=600").count, 3);
}

#[test]
fn concurrent_requests_never_share_an_instance() {
    let s = Served::start(&[
        "--max-concurrent",
        "4",
        "--queue-timeout",
        "30s",
        "--reuse",
        "1000",
        &format!("c={}", counter()),
    ]);
    let url = s.url("/sleep?n=100");
    // Eight clients for four instances: requests queue, and every instance is handed from
    // one request to the next while others run.
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || (0..5).map(|_| seen(&curl(&[&url]))).collect::<Vec<_>>())
        })
        .collect();
    let all: Vec<Seen> = clients
        .into_iter()
        .flat_map(|c| c.join().unwrap())
        .collect();
    assert!(
        all.iter().all(|r| !r.overlap),
        "a request found another inside its instance: {all:?}"
    );
    let mut by_instance: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for r in &all {
        by_instance.entry(&r.instance).or_default().push(r.count);
    }
    assert!(
        by_instance.len() <= 4,
        "more instances than --max-concurrent: {by_instance:?}"
    );
    for (id, counts) in &mut by_instance {
        counts.sort();
        let expected: Vec<u64> = (1..=counts.len() as u64).collect();
        assert_eq!(
            *counts, expected,
            "instance {id} served one request at a time"
        );
    }
    assert!(
        by_instance.values().any(|c| c.len() > 1),
        "instances were reused: {by_instance:?}"
    );
}

#[test]
fn an_instance_never_serves_another_app() {
    // Two apps of one binary: the same compiled program, never the same instance. One app
    // corrupts its own state; only its own later requests see it.
    let file = counter();
    let s = Served::start(&[
        "--max-concurrent",
        "1",
        "--reuse",
        "100",
        &format!("a={file}@a.test/"),
        &format!("b={file}@b.test/"),
    ]);
    let on = |host: &str, path: &str| seen(&curl(&["-H", &format!("Host: {host}"), &s.url(path)]));
    let a = on("a.test", "/");
    assert_eq!(on("a.test", "/set?n=1000").count, 1001);
    let b = on("b.test", "/");
    assert_eq!(b.count, 1, "app b never sees app a's state");
    assert_ne!(a.instance, b.instance);
    assert_eq!(on("a.test", "/").count, 1002, "app a's own requests do");
    assert_eq!(on("b.test", "/").count, 2);
}

#[test]
fn off_by_default_every_request_is_fresh() {
    let s = Served::start(&["--admin-listen", "127.0.0.1:0", &format!("c={}", counter())]);
    let all: Vec<Seen> = (0..4).map(|_| get(&s, "/")).collect();
    assert!(all.iter().all(|r| r.count == 1), "{all:?}");
    let mut ids: Vec<&str> = all.iter().map(|r| r.instance.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 4, "a new instance every time: {all:?}");
    s.wait_metric("skiff_instances_reused_total{app=\"c\"} 0");
    // 1 is off too, and 0 is refused rather than read as "unlimited".
    let bad = common::Skiff::new().run(&["serve", "--reuse", "0", &counter()]);
    bad.code(125).stderr_has("--reuse 0");
}

#[test]
fn deploy_and_up_take_reuse_and_the_api_keeps_it() {
    let d = Daemon::start(&["--http-listen", "127.0.0.1:0"]);
    d.run(&[
        "deploy",
        "--name",
        "c",
        "--route",
        "c.test/",
        "--reuse",
        "2",
        &counter(),
    ])
    .code(0);
    assert_eq!(d.inspect("c")["spec"]["limits"]["reuse"], 2);
    let url = format!("http://{}/", d.http_addr());
    let on = || seen(&curl(&["-H", "Host: c.test", &url])).count;
    let counts: Vec<u64> = (0..3).map(|_| on()).collect();
    // The daemon's apps may run several instances at once; one client, one at a time.
    assert_eq!(counts, [1, 2, 1]);

    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(guest("http-counter.wasm"), dir.path().join("c.wasm")).unwrap();
    let file = dir.path().join("skiff-compose.toml");
    std::fs::write(
        &file,
        "[workloads.u]\nimage = \"c.wasm\"\nroute = \"u.test/\"\nreuse = 4\n",
    )
    .unwrap();
    d.run(&["up", "-f", &file.display().to_string()]).code(0);
    assert_eq!(d.inspect("u")["spec"]["limits"]["reuse"], 4);

    // A task runs to completion: reuse means nothing there, and the daemon says so.
    std::fs::copy(guest("hello.wasm"), dir.path().join("hello.wasm")).unwrap();
    std::fs::write(&file, "[workloads.t]\nimage = \"hello.wasm\"\nreuse = 4\n").unwrap();
    d.run(&["up", "-f", &file.display().to_string(), "-p", "t"])
        .code(1)
        .stderr_has("limits.reuse is for HTTP apps only");
}

#[test]
fn a_guest_that_leaks_its_response_is_not_reused() {
    // A returned guest that still holds its response-outparam, or an unfinished body, would keep
    // its client waiting for as long as its instance lived, and under steady traffic a reused
    // instance lives on: it is dropped instead, which ends them (502, and a cut body).
    let s = Served::start(&[
        "--max-concurrent",
        "1",
        "--reuse",
        "1000",
        &format!("c={}", counter()),
    ]);
    for path in ["/forget", "/forget-body"] {
        let url = s.url(path);
        let leaker = std::thread::spawn(move || curl(&[&url]));
        // Keep the app busy meanwhile, so an instance parked with the leak would never idle
        // long enough to be dropped.
        let mut served = 0;
        while !leaker.is_finished() {
            assert!(
                served < 300,
                "{path}: its client still waits after {served} requests"
            );
            get(&s, "/");
            served += 1;
        }
        let r = leaker.join().unwrap();
        if path == "/forget" {
            assert_eq!(r.status, 502, "{r:?}");
        }
    }
}
