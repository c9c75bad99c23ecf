#!/usr/bin/env python3
"""A Docker token server (https://distribution.github.io/distribution/spec/auth/token/), as a
test fixture. The registry under test is the real one: it verifies the JWTs this server signs.

    token_server.py DIR      DIR/config.json in; DIR/cert.pem, DIR/key.pem, DIR/issued.jsonl out

config.json:
    {"service": "...", "issuer": "...", "expires_in": 300,
     "users": {"me": {"password": "s3cret", "actions": ["pull", "push"]}},
     "valid_for": 300,         # how long the registry accepts a token (default: expires_in);
                               # shorter acts out a token revoked early or clocks apart
     "refresh_tokens": true,   # hand out refresh tokens (Docker's "identity token")
     "stale_tokens": 0}        # the first N tokens are already expired when handed out

Endpoints (one realm, `/token`):
- GET  /token?service=&scope=...[&offline_token=true&client_id=]  with Basic credentials (or
  none: anonymous, granted nothing) -> {"token", "access_token", "expires_in", "issued_at"
  [, "refresh_token" when offline_token=true]}
- POST /token (form) grant_type=password (username, password[, access_type=offline]) or
  grant_type=refresh_token (refresh_token) -> {"access_token", "expires_in", "issued_at", "scope"
  [, "refresh_token"]}. This is the OAuth2 flow Docker uses with an identity token.

Tokens are RS256 JWTs whose header carries the signing certificate (`x5c`); the registry
trusts that certificate through `rootcertbundle`. Signing goes through the `openssl` CLI.

The registry (distribution 2.8) accepts a token until 60 s after its `exp` (clock-skew leeway),
so `exp` is set 60 s early: a token with expires_in=2 is refused by the registry 2 s after it
was issued, as the client was told.

Prints the port on stdout once it listens. Every token issued is appended to issued.jsonl (the
tests read it to see which grant a client used); nothing else is logged.
"""
import base64
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIR = sys.argv[1]
CONFIG = json.load(open(os.path.join(DIR, "config.json")))
KEY = os.path.join(DIR, "key.pem")
CERT = os.path.join(DIR, "cert.pem")
REGISTRY_LEEWAY = 60

subprocess.run(
    ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", KEY, "-out", CERT,
     "-days", "2", "-subj", "/CN=skiff-test-token-issuer"],
    check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
CERT_DER = subprocess.run(["openssl", "x509", "-in", CERT, "-outform", "DER"],
                          check=True, capture_output=True).stdout

LOCK = threading.Lock()
STATE = {"issued": 0, "refresh": {}}  # refresh token -> user


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def sign(payload):
    return subprocess.run(["openssl", "dgst", "-sha256", "-sign", KEY], input=payload,
                          check=True, capture_output=True).stdout


def parse_scopes(scopes):
    """`repository:NAME:pull,push` (NAME may hold ':' for a port? no: names never do)."""
    out = []
    for s in scopes:
        for one in s.split(" "):
            parts = one.split(":")
            if len(parts) < 3:
                continue
            out.append((parts[0], ":".join(parts[1:-1]), parts[-1].split(",")))
    return out


def grant(user, scopes):
    allowed = CONFIG["users"].get(user, {}).get("actions", []) if user else []
    access = []
    for typ, name, actions in parse_scopes(scopes):
        ok = [a for a in actions if typ == "repository" and a in allowed]
        access.append({"type": typ, "name": name, "actions": ok})
    return access


def make_token(user, scopes):
    now = int(time.time())
    expires_in = int(CONFIG.get("expires_in", 300))
    with LOCK:
        STATE["issued"] += 1
        stale = STATE["issued"] <= int(CONFIG.get("stale_tokens", 0))
    exp = now + int(CONFIG.get("valid_for", expires_in)) - REGISTRY_LEEWAY
    if stale:
        exp = now - REGISTRY_LEEWAY - 5
    header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(CERT_DER).decode()]}
    access = grant(user, scopes)
    claims = {"iss": CONFIG["issuer"], "sub": user or "", "aud": CONFIG["service"],
              "exp": exp, "nbf": now - 1, "iat": now, "jti": secrets.token_hex(8),
              "access": access}
    signing_input = (b64url(json.dumps(header).encode()) + "." +
                     b64url(json.dumps(claims).encode())).encode()
    token = signing_input.decode() + "." + b64url(sign(signing_input))
    issued_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    return token, expires_in, issued_at, access


def new_refresh_token(user):
    if not CONFIG.get("refresh_tokens"):
        return None
    r = secrets.token_urlsafe(24)
    with LOCK:
        STATE["refresh"][r] = user
    return r


def record(entry):
    with LOCK:
        with open(os.path.join(DIR, "issued.jsonl"), "a") as f:
            f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def unauthorized(self, why):
        self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": why}]},
                   [("WWW-Authenticate", 'Basic realm="skiff-test-token"')])

    def check_password(self, user, password):
        u = CONFIG["users"].get(user)
        return u is not None and u["password"] == password

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if url.path != "/token":
            return self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": url.path}]})
        q = urllib.parse.parse_qs(url.query)
        if q.get("service", [""])[0] != CONFIG["service"]:
            return self.reply(400, {"errors": [{"code": "DENIED", "message": "wrong service"}]})
        user = None
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                user, password = base64.b64decode(auth[6:]).decode().split(":", 1)
            except Exception:
                return self.unauthorized("malformed Basic credentials")
            if not self.check_password(user, password):
                return self.unauthorized("wrong username or password")
        elif auth:
            return self.unauthorized("only Basic credentials are accepted here")
        scopes = q.get("scope", [])
        token, expires_in, issued_at, access = make_token(user, scopes)
        body = {"token": token, "access_token": token, "expires_in": expires_in,
                "issued_at": issued_at}
        refresh = None
        if user and q.get("offline_token", [""])[0] == "true":
            refresh = new_refresh_token(user)
            if refresh:
                body["refresh_token"] = refresh
        record({"method": "GET", "grant": "basic" if user else "anonymous", "user": user,
                "scope": scopes, "access": access, "refresh_token_issued": bool(refresh),
                "client_id": q.get("client_id", [None])[0], "token": token})
        self.reply(200, body)

    def do_POST(self):
        url = urllib.parse.urlparse(self.path)
        if url.path != "/token":
            return self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": url.path}]})
        length = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        f = lambda k: form.get(k, [""])[0]
        if f("service") != CONFIG["service"]:
            return self.reply(400, {"error": "invalid_request", "error_description": "service"})
        grant_type = f("grant_type")
        refresh = None
        if grant_type == "password":
            user = f("username")
            if not self.check_password(user, f("password")):
                return self.reply(401, {"error": "invalid_grant"})
            if f("access_type") == "offline":
                refresh = new_refresh_token(user)
        elif grant_type == "refresh_token":
            with LOCK:
                user = STATE["refresh"].get(f("refresh_token"))
            if user is None:
                return self.reply(401, {"error": "invalid_grant"})
            refresh = f("refresh_token")
        else:
            return self.reply(400, {"error": "unsupported_grant_type"})
        scopes = [s for s in f("scope").split(" ") if s]
        token, expires_in, issued_at, access = make_token(user, scopes)
        body = {"access_token": token, "expires_in": expires_in, "issued_at": issued_at,
                "scope": " ".join(scopes)}
        if refresh:
            body["refresh_token"] = refresh
        record({"method": "POST", "grant": grant_type, "user": user, "scope": scopes,
                "access": access, "refresh_token_issued": bool(refresh) and grant_type == "password",
                "client_id": f("client_id") or None, "token": token})
        self.reply(200, body)


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
