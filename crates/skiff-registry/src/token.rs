//! Docker's token flow (the distribution "token authentication" spec and its OAuth2 variant):
//! a registry answers 401 with `WWW-Authenticate: Bearer realm=…,service=…`, the client asks the
//! realm for a short-lived token for the scopes it needs, and sends that as `Bearer`.
//!
//! - With a username and password: `GET realm?service=&scope=` with Basic credentials. At login,
//!   `offline_token=true` asks for a refresh token too: Docker stores one as `identitytoken`.
//! - With an identity token: the OAuth2 form `POST realm` with `grant_type=refresh_token`; the
//!   password is never needed again (nor stored).
//!
//! Tokens expire (`expires_in`, 60 s when absent); the session refreshes them (see session.rs).
//! Nothing here logs or returns a secret: token server errors are reduced to their status and
//! error code.

use crate::body::Peer;
use crate::credentials::Credentials;
use crate::error::{RegistryError, Result};
use reqwest::StatusCode;
use std::time::Duration;

/// `client_id` sent to token servers (the spec asks clients to name themselves).
const CLIENT_ID: &str = "skiff";

/// Lifetime assumed when the token server does not say (the spec's default).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);

/// A parsed `WWW-Authenticate: Bearer …` challenge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub realm: String,
    pub service: Option<String>,
    /// The scope the registry wanted (on an `insufficient_scope` answer).
    pub scope: Option<String>,
    /// `invalid_token` (expired, revoked, malformed) or `insufficient_scope`.
    pub error: Option<String>,
}

/// Parse a Bearer challenge; `None` for any other scheme or one without a realm.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut c = Challenge::default();
    for (k, v) in params(rest) {
        match k.to_ascii_lowercase().as_str() {
            "realm" => c.realm = v,
            "service" => c.service = Some(v),
            "scope" => c.scope = Some(v),
            "error" => c.error = Some(v),
            _ => {}
        }
    }
    (!c.realm.is_empty()).then_some(c)
}

/// `k=v` and `k="v, with commas"` pairs, comma separated.
fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        if chars.next().is_none() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect();
        }
        out.push((key.trim().to_string(), value.trim().to_string()));
    }
}

/// What a token server handed out.
pub(crate) struct Grant {
    pub token: String,
    pub lifetime: Duration,
    /// A refresh token: asked for at login (`offline`), or a rotated one on refresh.
    pub refresh_token: Option<String>,
}

/// How to ask for a token.
pub(crate) struct Ask<'a> {
    pub challenge: &'a Challenge,
    /// `repository:NAME:pull[,push]`.
    pub scopes: &'a [String],
    pub credentials: Option<&'a Credentials>,
    /// An identity token to exchange (the stored one, or the last one the server rotated to).
    pub refresh_token: Option<&'a str>,
    /// Ask for a refresh token too (login).
    pub offline: bool,
    /// The registry, for messages.
    pub registry: &'a str,
    /// Hosts that may be spoken to over plain HTTP (besides loopback).
    pub insecure: &'a [String],
    /// Largest answer read.
    pub max_answer: u64,
    /// When the token server counts as stalled.
    pub stall: crate::StallRule,
}

#[derive(serde::Deserialize)]
struct Answer {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
    refresh_token: Option<String>,
}

pub(crate) async fn fetch(http: &reqwest::Client, ask: Ask<'_>) -> Result<Grant> {
    let realm = realm_url(&ask)?;
    let service = ask.challenge.service.as_deref();
    let exchanging = ask.refresh_token.is_some();
    let req = if let Some(refresh) = ask.refresh_token {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", CLIENT_ID),
        ];
        let scope = ask.scopes.join(" ");
        form.push(("scope", &scope));
        if let Some(s) = service {
            form.push(("service", s));
        }
        let body = form_encode(&form);
        http.post(realm)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
    } else {
        let mut url = realm;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for s in ask.scopes {
                q.append_pair("scope", s);
            }
            if ask.offline {
                q.append_pair("offline_token", "true");
                q.append_pair("client_id", CLIENT_ID);
            }
        }
        let mut req = http.get(url);
        if let Some(c) = ask.credentials.filter(|c| !c.username.is_empty()) {
            req = req.basic_auth(&c.username, Some(&c.secret));
        }
        req
    };
    let name = format!("the token server of {}", ask.registry);
    let peer = |what: &'static str| Peer { name: &name, what };
    let resp = crate::body::head(req.send(), ask.stall, &peer("a token request"))
        .await?
        .map_err(|e| RegistryError::Unreachable {
            registry: name.clone(),
            detail: crate::session::error_chain(&e),
        })?;
    let status = resp.status();
    if !status.is_success() {
        let body = crate::body::error_body(resp, ask.stall, &peer("its error answer")).await;
        let code = oauth_error(&body);
        let reason = match status {
            StatusCode::UNAUTHORIZED | StatusCode::BAD_REQUEST if exchanging => format!(
                "the token server refused the stored identity token (HTTP {status}{code}): it \
                 expired or was revoked; run `skiff login {}` again",
                ask.registry
            ),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN if ask.credentials.is_some() => {
                format!("the token server rejected the username or password (HTTP {status}{code})")
            }
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(RegistryError::LoginRequired {
                    registry: ask.registry.to_string(),
                })
            }
            _ => format!("the token server answered HTTP {status}{code}"),
        };
        return Err(RegistryError::LoginFailed {
            registry: ask.registry.to_string(),
            reason,
        });
    }
    let bad = |why: &str| RegistryError::LoginFailed {
        registry: ask.registry.to_string(),
        reason: format!("the token server's answer {why}"),
    };
    let body = crate::body::read_body(resp, ask.max_answer, ask.stall, &peer("the token")).await?;
    let answer: Answer = serde_json::from_slice(&body).map_err(|_| bad("is not the token JSON"))?;
    let token = answer
        .access_token
        .or(answer.token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("holds no token"))?;
    Ok(Grant {
        token,
        lifetime: answer
            .expires_in
            .filter(|s| *s > 0)
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_LIFETIME),
        refresh_token: answer.refresh_token.filter(|t| !t.is_empty()),
    })
}

/// The realm, refusing to send credentials in clear text: a registry reached over HTTPS cannot
/// point us at a plain-HTTP realm elsewhere (only loopback and named insecure hosts qualify).
fn realm_url(ask: &Ask<'_>) -> Result<reqwest::Url> {
    let bad = |why: String| RegistryError::LoginFailed {
        registry: ask.registry.to_string(),
        reason: why,
    };
    let url = reqwest::Url::parse(&ask.challenge.realm)
        .map_err(|_| bad("the registry named a token server (realm) that is not a URL".into()))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" => {
            let host = match (url.host_str(), url.port()) {
                (Some(h), Some(p)) => format!("{h}:{p}"),
                (Some(h), None) => h.to_string(),
                _ => String::new(),
            };
            if crate::transport::scheme_for(&host, ask.insecure) == "http" {
                Ok(url)
            } else {
                Err(bad(format!(
                    "the token server {} is plain HTTP; skiff sends credentials over HTTP only to \
                     loopback or --insecure-registry hosts",
                    url.origin().ascii_serialization()
                )))
            }
        }
        other => Err(bad(format!("the token server URL has scheme {other:?}"))),
    }
}

/// `error` of an OAuth2 error body, or `errors[0].code` of a registry-style one.
fn oauth_error(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let code = v
        .get("error")
        .and_then(|e| e.as_str())
        .or_else(|| v.pointer("/errors/0/code").and_then(|e| e.as_str()));
    match code {
        // Codes are short identifiers; anything else is not echoed.
        Some(c) if c.len() < 64 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
            format!(", {c}")
        }
        _ => String::new(),
    }
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    let mut s = reqwest::Url::parse("x:").expect("a valid URL");
    s.query_pairs_mut().extend_pairs(pairs);
    s.query().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_with_commas_inside_quotes() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push",error="insufficient_scope""#,
        )
        .unwrap();
        assert_eq!(c.realm, "https://auth.example/token");
        assert_eq!(c.service.as_deref(), Some("reg"));
        assert_eq!(c.scope.as_deref(), Some("repository:a/b:pull,push"));
        assert_eq!(c.error.as_deref(), Some("insufficient_scope"));
        let c = parse_challenge("bearer realm=https://a/t, service=s").unwrap();
        assert_eq!(
            (c.realm.as_str(), c.service.as_deref()),
            ("https://a/t", Some("s"))
        );
        assert!(parse_challenge(r#"Basic realm="x""#).is_none());
        assert!(parse_challenge("Bearer service=x").is_none());
    }

    #[test]
    fn form_encoding_escapes() {
        assert_eq!(
            form_encode(&[("scope", "repository:a/b:pull,push x"), ("k", "&=")]),
            "scope=repository%3Aa%2Fb%3Apull%2Cpush+x&k=%26%3D"
        );
    }

    #[test]
    fn only_error_codes_are_echoed() {
        assert_eq!(
            oauth_error(br#"{"error":"invalid_grant"}"#),
            ", invalid_grant"
        );
        assert_eq!(oauth_error(br#"{"error":"secret hunter2 was wrong"}"#), "");
        assert_eq!(oauth_error(b"not json"), "");
    }
}
