//! Routes: which app answers a request, by Host header and longest path prefix.
//!
//! A route is `[HOST]/PREFIX`: `api.example.com/`, `/shop`, `*.example.com/v1`, or `/` (every
//! request). A request goes to the route whose host matches most specifically (exact name, then
//! `*.domain`, then any host) and, among those, whose prefix is longest. Prefixes match whole
//! path segments: `/shop` serves `/shop` and `/shop/cart`, not `/shopping`. The guest sees the
//! full path, prefix included.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    host: Host,
    /// Without a trailing slash; empty for `/`.
    prefix: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Host {
    Any,
    Exact(String),
    /// `*.example.com`, stored as `.example.com`.
    Subdomain(String),
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Any => {}
            Host::Exact(h) => f.write_str(h)?,
            Host::Subdomain(s) => write!(f, "*{s}")?,
        }
        write!(
            f,
            "{}",
            if self.prefix.is_empty() {
                "/"
            } else {
                &self.prefix
            }
        )
    }
}

impl Route {
    /// Every request.
    pub fn any() -> Route {
        Route {
            host: Host::Any,
            prefix: String::new(),
        }
    }

    /// Parse `[HOST]/PREFIX`.
    pub fn parse(s: &str) -> Result<Route, String> {
        let Some(slash) = s.find('/') else {
            // `shop` is a path to most people and a host to the grammar: ask, naming both.
            return Err(format!(
                "invalid route {s:?}: a route is [HOST]/PREFIX: did you mean /{s} (the path \
                 prefix on any host) or {s}/ (every path on host {s})?"
            ));
        };
        let (host, path) = s.split_at(slash);
        let host = host.to_ascii_lowercase();
        let host = if host.is_empty() {
            Host::Any
        } else if let Some(d) = host.strip_prefix("*.") {
            if d.is_empty() || !valid_host(d) {
                return Err(format!("invalid route {s:?}: bad host {host:?}"));
            }
            Host::Subdomain(format!(".{d}"))
        } else if valid_host(&host) {
            Host::Exact(host)
        } else {
            return Err(format!(
                "invalid route {s:?}: bad host {host:?} (a name such as api.example.com, or *.example.com)"
            ));
        };
        if path.contains(['?', '#', '*']) || path.contains("//") {
            return Err(format!(
                "invalid route {s:?}: the prefix is a plain path such as /shop"
            ));
        }
        Ok(Route {
            host,
            prefix: path.trim_end_matches('/').to_string(),
        })
    }

    /// Where a client reaches this route on a server listening on `listen` (`scheme` is
    /// `http` or `https`): the route's host if it names one (a `*.domain` route shows as
    /// `app.domain`, a name the client picks), else the listening address, with `localhost`
    /// for an unspecified one (`0.0.0.0`, `::`).
    pub fn url(&self, scheme: &str, listen: std::net::SocketAddr) -> String {
        let port = listen.port();
        let host = match &self.host {
            Host::Exact(h) => h.clone(),
            Host::Subdomain(d) => format!("app{d}"),
            Host::Any if listen.ip().is_unspecified() => "localhost".into(),
            Host::Any => match listen.ip() {
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            },
        };
        let default = matches!((scheme, port), ("http", 80) | ("https", 443));
        let port = if default {
            String::new()
        } else {
            format!(":{port}")
        };
        let path = if self.prefix.is_empty() {
            "/"
        } else {
            &self.prefix
        };
        format!("{scheme}://{host}{port}{path}")
    }

    /// How well this route matches, or `None`: (host specificity, prefix length).
    fn score(&self, host: &str, path: &str) -> Option<(u8, usize)> {
        let h = match &self.host {
            Host::Any => 0,
            Host::Subdomain(d) if host.len() > d.len() && host.ends_with(d.as_str()) => 1,
            Host::Exact(e) if e == host => 2,
            _ => return None,
        };
        let rest = path.strip_prefix(self.prefix.as_str())?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        Some((h, self.prefix.len()))
    }
}

fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

/// Routes of every app; picks the best match for a request. `T` is what a route leads to (an
/// app's index for `skiff serve`, the app itself for the daemon).
///
/// Indexed so that neither adding a route nor picking one walks every route: the daemon holds
/// thousands of apps, and a request must not pay for the ones it is not for. Exact hosts and
/// "any host" are hash maps keyed by prefix, so a pick looks up each whole-segment prefix of
/// the path, longest first; `*.domain` routes are few and scanned.
///
/// The maps are split into shards behind `Arc`s, so a clone shares them and a change to a
/// clone copies only the shard it touches: the daemon swaps in a changed copy per deploy, and
/// copying every route each time made deploying N apps cost N² (measured: most of a deploy's
/// CPU at 4,000 apps).
#[derive(Debug, Clone)]
pub struct Router<T = usize> {
    /// Host → prefix → target, sharded by host.
    exact: Vec<Arc<HashMap<String, HashMap<String, T>>>>,
    subdomain: Arc<Vec<(Route, T)>>,
    /// Prefix → target, sharded by prefix.
    any: Vec<Arc<HashMap<String, T>>>,
    any_len: usize,
    len: usize,
}

/// Shards per map: a change copies about 1/64 of the routes.
const SHARDS: usize = 64;

/// The shard of `key`: FNV-1a, fixed so that every copy of a table agrees.
fn shard(key: &str) -> usize {
    let h = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (h % SHARDS as u64) as usize
}

impl<T> Default for Router<T> {
    fn default() -> Self {
        Router {
            exact: (0..SHARDS).map(|_| Arc::default()).collect(),
            subdomain: Arc::default(),
            any: (0..SHARDS).map(|_| Arc::default()).collect(),
            any_len: 0,
            len: 0,
        }
    }
}

impl<T: Clone> Router<T> {
    /// Add `route` leading to `target`; the same route twice is an error.
    pub fn add(&mut self, route: Route, target: T) -> Result<(), String> {
        if self.get(&route).is_some() {
            return Err(format!(
                "route {route} is given to two apps; each route serves one app"
            ));
        }
        match &route.host {
            Host::Any => {
                Arc::make_mut(&mut self.any[shard(&route.prefix)])
                    .insert(route.prefix.clone(), target);
                self.any_len += 1;
            }
            Host::Exact(h) => {
                Arc::make_mut(&mut self.exact[shard(h)])
                    .entry(h.clone())
                    .or_default()
                    .insert(route.prefix.clone(), target);
            }
            Host::Subdomain(_) => Arc::make_mut(&mut self.subdomain).push((route, target)),
        }
        self.len += 1;
        Ok(())
    }

    /// Take `route` away; what it led to, if it was there.
    pub fn remove(&mut self, route: &Route) -> Option<T> {
        self.get(route)?;
        let gone = match &route.host {
            Host::Any => {
                self.any_len -= 1;
                Arc::make_mut(&mut self.any[shard(&route.prefix)]).remove(&route.prefix)
            }
            Host::Exact(h) => {
                let hosts = Arc::make_mut(&mut self.exact[shard(h)]);
                let prefixes = hosts.get_mut(h)?;
                let gone = prefixes.remove(&route.prefix);
                if prefixes.is_empty() {
                    hosts.remove(h);
                }
                gone
            }
            Host::Subdomain(_) => {
                let subs = Arc::make_mut(&mut self.subdomain);
                let i = subs.iter().position(|(r, _)| r == route)?;
                Some(subs.remove(i).1)
            }
        };
        self.len -= 1;
        gone
    }
}

impl<T> Router<T> {
    /// What exactly `route` leads to (not what a request would pick).
    pub fn get(&self, route: &Route) -> Option<&T> {
        match &route.host {
            Host::Any => self.any[shard(&route.prefix)].get(&route.prefix),
            Host::Exact(h) => self.exact[shard(h)].get(h)?.get(&route.prefix),
            Host::Subdomain(_) => self
                .subdomain
                .iter()
                .find(|(r, _)| r == route)
                .map(|(_, t)| t),
        }
    }

    /// How many routes there are.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The target for this Host (port and case ignored) and path: the most specific host
    /// (exact, then `*.domain`, then any), and among its routes the longest whole-segment
    /// prefix.
    pub fn pick(&self, host: Option<&str>, path: &str) -> Option<&T> {
        let host = host.map(strip_port).unwrap_or("").to_ascii_lowercase();
        if let Some(prefixes) = self.exact[shard(&host)].get(&host) {
            if let Some(t) = longest(path, |p| prefixes.get(p)) {
                return Some(t);
            }
        }
        let mut best: Option<(usize, &T)> = None;
        for (r, t) in self.subdomain.iter() {
            if let Some((_, len)) = r.score(&host, path) {
                // On a tie the later route wins, as it always has.
                if best.is_none_or(|(l, _)| len >= l) {
                    best = Some((len, t));
                }
            }
        }
        if let Some((_, t)) = best {
            return Some(t);
        }
        if self.any_len == 0 {
            return None;
        }
        longest(path, |p| self.any[shard(p)].get(p))
    }
}

/// The target of the longest prefix `lookup` knows that `path` starts with, on a segment
/// boundary: `path` itself, then `path` cut before each `/`, right to left.
fn longest<'a, T>(path: &str, lookup: impl Fn(&str) -> Option<&'a T>) -> Option<&'a T> {
    if let Some(t) = lookup(path) {
        return Some(t);
    }
    let mut end = path.len();
    while let Some(slash) = path[..end].rfind('/') {
        if let Some(t) = lookup(&path[..slash]) {
            return Some(t);
        }
        end = slash;
    }
    None
}

fn strip_port(h: &str) -> &str {
    if h.starts_with('[') {
        // `[::1]:8080` is `[::1]`. A `[` never closed is a bad Host header from the client: kept
        // whole, it matches no route's host (found by fuzzing: it used to slice past the end).
        return h.find(']').map_or(h, |i| &h[..=i]);
    }
    h.rsplit_once(':').map(|(h, _)| h).unwrap_or(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_a_client_can_use() {
        let url = |r: &str, listen: &str| {
            Route::parse(r)
                .unwrap()
                .url("http", listen.parse().unwrap())
        };
        assert_eq!(url("/", "0.0.0.0:8080"), "http://localhost:8080/");
        assert_eq!(url("/shop", "127.0.0.1:9000"), "http://127.0.0.1:9000/shop");
        assert_eq!(
            url("api.example.com/v1", "[::]:80"),
            "http://api.example.com/v1"
        );
        assert_eq!(
            url("*.example.com/", "[::1]:81"),
            "http://app.example.com:81/"
        );
        assert_eq!(url("/", "[::1]:81"), "http://[::1]:81/");
    }

    fn router(routes: &[&str]) -> Router {
        let mut r = Router::default();
        for (i, s) in routes.iter().enumerate() {
            r.add(Route::parse(s).unwrap(), i).unwrap();
        }
        r
    }

    #[test]
    fn host_then_longest_prefix() {
        let r = router(&[
            "/",
            "/shop",
            "api.example.com/",
            "*.example.com/",
            "/shop/admin",
        ]);
        assert_eq!(r.pick(Some("x.org"), "/").copied(), Some(0));
        assert_eq!(r.pick(Some("x.org"), "/shop").copied(), Some(1));
        assert_eq!(r.pick(Some("x.org"), "/shop/cart?x=1").copied(), Some(1));
        assert_eq!(r.pick(Some("x.org"), "/shopping").copied(), Some(0));
        assert_eq!(r.pick(Some("x.org"), "/shop/admin/x").copied(), Some(4));
        assert_eq!(
            r.pick(Some("API.example.com:8080"), "/shop").copied(),
            Some(2)
        );
        assert_eq!(r.pick(Some("www.example.com"), "/").copied(), Some(3));
        assert_eq!(r.pick(None, "/").copied(), Some(0));
    }

    #[test]
    fn nothing_matches_is_none() {
        let r = router(&["api.example.com/", "/shop"]);
        assert_eq!(r.pick(Some("other.com"), "/").copied(), None);
        assert_eq!(r.pick(Some("other.com"), "/shop").copied(), Some(1));
    }

    #[test]
    fn bad_routes_and_duplicates() {
        assert!(Route::parse("example.com")
            .unwrap_err()
            .contains("[HOST]/PREFIX"));
        let shop = Route::parse("shop").unwrap_err();
        assert!(
            shop.contains("did you mean /shop") && shop.contains("or shop/"),
            "{shop}"
        );
        assert!(Route::parse("ex ample.com/").is_err());
        assert!(Route::parse("/a?b").is_err());
        let mut r = Router::default();
        r.add(Route::parse("/shop/").unwrap(), 0).unwrap();
        assert!(r
            .add(Route::parse("/shop").unwrap(), 1)
            .unwrap_err()
            .contains("two apps"));
        assert_eq!(Route::parse("/shop/").unwrap().to_string(), "/shop");
        assert_eq!(Route::parse("*.a.com/").unwrap().to_string(), "*.a.com/");
    }

    #[test]
    fn thousands_of_routes_pick_like_one() {
        let mut routes: Vec<String> = (0..5000).map(|i| format!("/app{i}")).collect();
        routes.extend((0..5000).map(|i| format!("h{i}.example.com/")));
        routes.push("*.example.com/".into());
        routes.push("*.b.example.com/".into());
        let r = router(&routes.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(r.len(), 10_002);
        assert_eq!(r.pick(Some("x"), "/app4321/deep/path").copied(), Some(4321));
        assert_eq!(r.pick(Some("x"), "/app43210").copied(), None);
        assert_eq!(
            r.pick(Some("H77.example.com:80"), "/app1").copied(),
            Some(5077)
        );
        // Among matching *.domain routes of one prefix length, the later one wins, as before.
        assert_eq!(r.pick(Some("a.b.example.com"), "/").copied(), Some(10_001));
        assert_eq!(
            r.pick(Some("a.example.com"), "/app1").copied(),
            Some(10_000)
        );
    }

    #[test]
    fn routes_come_and_go_and_a_copy_changes_alone() {
        let mut r = router(&["/", "/shop", "api.example.com/v1", "*.example.com/"]);
        let before = r.clone();
        assert_eq!(r.remove(&Route::parse("/shop").unwrap()), Some(1));
        assert_eq!(r.remove(&Route::parse("/shop").unwrap()), None);
        assert_eq!(r.pick(Some("x.org"), "/shop/cart").copied(), Some(0));
        assert_eq!(
            r.remove(&Route::parse("api.example.com/v1").unwrap()),
            Some(2)
        );
        assert_eq!(r.pick(Some("api.example.com"), "/v1").copied(), Some(3));
        assert_eq!(r.remove(&Route::parse("*.example.com/").unwrap()), Some(3));
        assert_eq!(r.pick(Some("api.example.com"), "/v1").copied(), Some(0));
        assert_eq!(r.len(), 1);
        r.add(Route::parse("/shop").unwrap(), 9).unwrap();
        assert_eq!(r.pick(None, "/shop").copied(), Some(9));
        // The copy taken before shares nothing that changed.
        assert_eq!(before.len(), 4);
        assert_eq!(before.pick(Some("x.org"), "/shop/cart").copied(), Some(1));
        assert_eq!(
            before.pick(Some("api.example.com"), "/v1/x").copied(),
            Some(2)
        );
        assert_eq!(before.get(&Route::parse("/shop").unwrap()), Some(&1));
    }

    /// Fuzz regression (target `route`): a Host header with an unclosed `[` made `pick` slice
    /// past the end of it, panicking the task serving the request.
    #[test]
    fn a_host_with_an_unclosed_bracket_matches_no_host() {
        let input = include_bytes!("../tests/fuzz-regressions/route-unclosed-bracket-host");
        let text = std::str::from_utf8(input).unwrap();
        let (spec, host) = text.split_once('\n').unwrap();
        let mut r = Router::default();
        r.add(Route::parse(spec).unwrap(), 1).unwrap();
        r.add(Route::any(), 2).unwrap();
        assert_eq!(r.pick(Some(host), "/v1").copied(), Some(2));
        let r = router(&["[::1]/v1", "/"]);
        assert_eq!(r.pick(Some("[::1]:8080"), "/v1").copied(), Some(0));
        assert_eq!(r.pick(Some("[::1"), "/v1").copied(), Some(1));
    }
}
