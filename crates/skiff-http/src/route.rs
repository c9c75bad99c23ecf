//! Routes: which app answers a request, by Host header and longest path prefix.
//!
//! A route is `[HOST]/PREFIX`: `api.example.com/`, `/shop`, `*.example.com/v1`, or `/` (every
//! request). A request goes to the route whose host matches most specifically (exact name, then
//! `*.domain`, then any host) and, among those, whose prefix is longest. Prefixes match whole
//! path segments: `/shop` serves `/shop` and `/shop/cart`, not `/shopping`. The guest sees the
//! full path, prefix included.

use std::collections::HashMap;
use std::fmt;

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
            return Err(format!(
                "invalid route {s:?}: expected [HOST]/PREFIX, e.g. /shop, api.example.com/ or *.example.com/v1"
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

/// Routes of every app; picks the best match for a request.
///
/// Indexed so that neither adding a route nor picking one walks every route: the daemon holds
/// thousands of apps, and a request must not pay for the ones it is not for. Exact hosts and
/// "any host" are hash maps keyed by prefix, so a pick looks up each whole-segment prefix of
/// the path, longest first; `*.domain` routes are few and scanned.
#[derive(Debug, Default)]
pub struct Router {
    exact: HashMap<String, HashMap<String, usize>>,
    subdomain: Vec<(Route, usize)>,
    any: HashMap<String, usize>,
    len: usize,
}

impl Router {
    /// Add `route` for app number `app`; the same route twice is an error.
    pub fn add(&mut self, route: Route, app: usize) -> Result<(), String> {
        let taken = match &route.host {
            Host::Any => self.any.contains_key(&route.prefix),
            Host::Exact(h) => self
                .exact
                .get(h)
                .is_some_and(|p| p.contains_key(&route.prefix)),
            Host::Subdomain(_) => self.subdomain.iter().any(|(r, _)| *r == route),
        };
        if taken {
            return Err(format!(
                "route {route} is given to two apps; each route serves one app"
            ));
        }
        match &route.host {
            Host::Any => {
                self.any.insert(route.prefix.clone(), app);
            }
            Host::Exact(h) => {
                self.exact
                    .entry(h.clone())
                    .or_default()
                    .insert(route.prefix.clone(), app);
            }
            Host::Subdomain(_) => self.subdomain.push((route, app)),
        }
        self.len += 1;
        Ok(())
    }

    /// How many routes there are.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The app for this Host (port and case ignored) and path: the most specific host (exact,
    /// then `*.domain`, then any), and among its routes the longest whole-segment prefix.
    pub fn pick(&self, host: Option<&str>, path: &str) -> Option<usize> {
        let host = host.map(strip_port).unwrap_or("").to_ascii_lowercase();
        if let Some(app) = self.exact.get(&host).and_then(|p| longest(p, path)) {
            return Some(app);
        }
        let mut best: Option<(usize, usize)> = None;
        for (r, app) in &self.subdomain {
            if let Some((_, len)) = r.score(&host, path) {
                // On a tie the later route wins, as it always has.
                if best.is_none_or(|(l, _)| len >= l) {
                    best = Some((len, *app));
                }
            }
        }
        if let Some((_, app)) = best {
            return Some(app);
        }
        longest(&self.any, path)
    }
}

/// The app of the longest prefix in `prefixes` that `path` starts with, on a segment boundary:
/// `path` itself, then `path` cut before each `/`, right to left.
fn longest(prefixes: &HashMap<String, usize>, path: &str) -> Option<usize> {
    if prefixes.is_empty() {
        return None;
    }
    if let Some(app) = prefixes.get(path) {
        return Some(*app);
    }
    let mut end = path.len();
    while let Some(slash) = path[..end].rfind('/') {
        if let Some(app) = prefixes.get(&path[..slash]) {
            return Some(*app);
        }
        end = slash;
    }
    None
}

fn strip_port(h: &str) -> &str {
    if h.starts_with('[') {
        return h.split(']').next().map(|s| &h[..s.len() + 1]).unwrap_or(h);
    }
    h.rsplit_once(':').map(|(h, _)| h).unwrap_or(h)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(r.pick(Some("x.org"), "/"), Some(0));
        assert_eq!(r.pick(Some("x.org"), "/shop"), Some(1));
        assert_eq!(r.pick(Some("x.org"), "/shop/cart?x=1"), Some(1));
        assert_eq!(r.pick(Some("x.org"), "/shopping"), Some(0));
        assert_eq!(r.pick(Some("x.org"), "/shop/admin/x"), Some(4));
        assert_eq!(r.pick(Some("API.example.com:8080"), "/shop"), Some(2));
        assert_eq!(r.pick(Some("www.example.com"), "/"), Some(3));
        assert_eq!(r.pick(None, "/"), Some(0));
    }

    #[test]
    fn nothing_matches_is_none() {
        let r = router(&["api.example.com/", "/shop"]);
        assert_eq!(r.pick(Some("other.com"), "/"), None);
        assert_eq!(r.pick(Some("other.com"), "/shop"), Some(1));
    }

    #[test]
    fn bad_routes_and_duplicates() {
        assert!(Route::parse("example.com")
            .unwrap_err()
            .contains("[HOST]/PREFIX"));
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
        assert_eq!(r.pick(Some("x"), "/app4321/deep/path"), Some(4321));
        assert_eq!(r.pick(Some("x"), "/app43210"), None);
        assert_eq!(r.pick(Some("H77.example.com:80"), "/app1"), Some(5077));
        // Among matching *.domain routes of one prefix length, the later one wins, as before.
        assert_eq!(r.pick(Some("a.b.example.com"), "/"), Some(10_001));
        assert_eq!(r.pick(Some("a.example.com"), "/app1"), Some(10_000));
    }
}
