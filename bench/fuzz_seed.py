"""Seed corpora for bench/fuzz.sh from the repository's own files: the test guests, the docs'
examples (skiff.toml, compose files, API bodies), and OCI documents (manifests, configs, indexes,
layout tars, compat layers) made here from a guest, in every layout a pull reads. Nothing is
committed: each run writes them again (they are a few MiB).

usage: python3 bench/fuzz_seed.py ROOT CORPUS_DIR
"""

import gzip
import hashlib
import io
import json
import os
import re
import sys
import tarfile

root, out = sys.argv[1], sys.argv[2]


def put(target, name, data):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def js(v):
    return json.dumps(v, separators=(",", ":"), sort_keys=True).encode()


def blocks(path, lang):
    text = open(os.path.join(root, path)).read()
    return re.findall(r"```" + lang + r"\n(.*?)```", text, re.S)


def tar_of(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


wasm_dir = os.path.join(root, "guests/wasm")
guests = {}
for n in sorted(os.listdir(wasm_dir)):
    data = open(os.path.join(wasm_dir, n), "rb").read()
    guests[n] = data
    # The big ones (an embedded JS engine) only slow every mutation down.
    if len(data) <= 256 << 10:
        put("wasm_inspect", n, data)
# Small guests for the documents that carry one: a big binary makes every mutation slow, and the
# wasm parser has a target of its own (with a 50 KiB binary in its layer, registry_compat ran 11
# executions a second).
small = guests["trap.wasm"]
component = guests["hello-p2.wasm"]

for i, s in enumerate([
    "hello", "hello:1.0", "me/app", "docker.io/library/hello:latest",
    "index.docker.io/me/app:v2", "localhost:5000/team/app:1.2.3",
    "registry.example.com/a/b/c@" + sha(b"x"), "Registry.Example.com/app:tag@" + sha(b"y"),
    "[::1]:5000/app", "a" * 300, "app:", "app@sha256:", "localhost/app",
]):
    put("reference", f"ref{i}", s)

for i, b in enumerate(blocks("docs/skiff-toml.md", "toml")):
    put("skiff_toml", f"doc{i}", b)
put("skiff_toml", "min", 'name = "hello"\nwasm = "hello.wasm"\n')
put("skiff_toml", "full", 'name = "me/hello"\nversion = "1.0"\nwasm = "a.wasm"\nargs = ["x"]\n'
    '[env]\nA = "1"\n[capabilities]\ndirs = ["/data"]\nenv = ["TOKEN"]\n'
    'outbound = ["https://api.example.com"]\nnetwork = true\n[http]\nroute = "/shop"\n')

for i, b in enumerate(blocks("docs/daemon.md", "toml")):
    put("compose", f"doc{i}", b)
put("compose", "full", '[workloads.web]\nimage = "http-hello.wasm"\nroute = "api.example.com/v1"\n'
    'memory = "64m"\ntimeout = "5s"\nrestart = "on-failure:3"\nvolumes = ["./data:/data:ro"]\n'
    'env = { A = "1" }\nargs = ["-v"]\nallow_outbound = ["https://x.example.com:443"]\n'
    '[workloads.job]\nimage = "hello:1.0"\nnetwork = true\n')

for i, s in enumerate(["/", "/shop", "/shop/\nexample.com\n/shop/cart", "api.example.com/",
                       "*.example.com/v1\na.example.com\n/v1/x", "[::1]:8080/a", "HOST.com/A/",
                       "/a//b", "*./", "/x?y"]):
    put("route", f"r{i}", s)

spec = {"image": sha(small), "image_name": "hello:1.0", "args": ["a"],
        "env": [{"name": "A", "value": "1"}],
        "mounts": [{"host": "/tmp", "guest": "/data", "read_only": True}], "network": False,
        "limits": {"memory_bytes": 1 << 26, "timeout_ms": 5000},
        "restart": {"name": "on-failure", "max_retries": 3}, "route": "/shop",
        "allow_outbound": []}
for i, b in enumerate(blocks("docs/daemon.md", "json")):
    put("api_json", f"doc{i}", b)
put("api_json", "create", js({"name": "web", "spec": spec, "start": True, "replace": False}))
put("api_json", "project", js({"workloads": {"web": spec}}))

# A skiff image (the CNCF Wasm layout) of a guest, and its layout tar.
def cncf(wasm, os_="wasip1"):
    config = {"created": "2024-01-01T00:00:00Z", "architecture": "wasm", "os": os_,
              "layerDigests": [sha(wasm)]}
    if os_ != "wasip1":
        config["component"] = {"exports": [], "imports": []}
    config = js(config)
    manifest = js({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.wasm.config.v0+json",
        "config": {"mediaType": "application/vnd.wasm.config.v0+json", "digest": sha(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/wasm", "digest": sha(wasm), "size": len(wasm)}],
        "annotations": {"dev.skiff.args": js(["a"]).decode(), "dev.skiff.env": js({"A": "1"}).decode(),
                        "dev.skiff.request.network": "true", "dev.skiff.http.route": "/shop"},
    })
    return manifest, config


for name, wasm, os_ in [("p1", small, "wasip1"), ("p2", component, "wasip2")]:
    manifest, config = cncf(wasm, os_)
    index = js({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                               "digest": sha(manifest), "size": len(manifest),
                               "annotations": {"org.opencontainers.image.ref.name": "1.0",
                                               "io.containerd.image.name": "docker.io/library/hello:1.0"},
                               "platform": {"os": os_, "architecture": "wasm"}}]})
    put("image_manifest", name, manifest + b"\0" + config)
    put("image_manifest", name + "-index", index)
    for sel in (0, 1, 2):
        put("registry_manifest", f"{name}-cncf-{sel}", bytes([sel]) + manifest)
        put("registry_manifest", f"{name}-index-{sel}", bytes([sel]) + index)
    if len(wasm) > 4096:
        continue  # the component's layout tar would be 90 KiB: the p1 one covers the format
    put("archive_load", name, tar_of([
        ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index),
        ("blobs/sha256/" + sha(manifest)[7:], manifest), ("blobs/sha256/" + sha(config)[7:], config),
        ("blobs/sha256/" + sha(wasm)[7:], wasm)]))

# Spin: a config naming components by layer digest; runwasi: titled layers.
wasm_layer = {"mediaType": "application/vnd.wasm.content.layer.v1+wasm", "digest": sha(small),
              "size": len(small)}
spin_config = js({"components": [{"id": "app", "source": {"content": {"digest": sha(small)}}}]})
spin = js({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "config": {"mediaType": "application/vnd.fermyon.spin.application.v1+config",
                      "digest": sha(spin_config), "size": len(spin_config)},
           "layers": [wasm_layer, dict(wasm_layer, digest=sha(component))]})
put("registry_manifest", "spin", b"\x08" + spin + b"\0" + spin_config)
put("registry_manifest", "spin-nocomp", b"\x00" + spin + b"\0" + spin_config)
runwasi = js({"schemaVersion": 2,
              "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                         "digest": sha(b"{}"), "size": 2},
              "layers": [{"mediaType": "application/vnd.bytecodealliance.wasm.component.layer.v0+wasm",
                          "digest": sha(component), "size": len(component),
                          "annotations": {"org.opencontainers.image.title": "app"}}]})
put("registry_manifest", "runwasi", b"\x08" + runwasi)

# Docker's compat layout: an ordinary image for wasi/wasm, the .wasm in a (gzipped) tar layer.
layer = tar_of([("app/", b""), ("app/hello.wasm", small)])
compat_config = js({"architecture": "wasm", "os": "wasip1", "created": "2024-01-01T00:00:00Z",
                    "config": {"Entrypoint": ["/app/hello.wasm"]}, "rootfs": {"type": "layers"}})
compat = js({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
             "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                        "digest": sha(compat_config), "size": len(compat_config)},
             "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                         "digest": sha(layer), "size": len(layer)}]})
put("registry_manifest", "compat", b"\x03" + compat)
SEP = b"\n--layer--\n"
put("registry_compat", "entrypoint", compat_config + SEP + layer)
put("registry_compat", "gzip", compat_config + SEP + gzip.compress(layer, mtime=0))
put("registry_compat", "no-entrypoint",
    js({"architecture": "wasm", "os": "wasi"}) + SEP + tar_of([("x.txt", b"hi")]) + SEP + layer)
