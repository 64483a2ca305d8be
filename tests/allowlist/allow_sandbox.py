"""TEST HARNESS ONLY: call every allowlisted global with hostile arguments and watch the outside world.

    python allow_sandbox.py SANDBOX_DIR ENTRIES_JSON      # prints {entry: {"violations", "error"}}

ENTRIES_JSON maps allow entries to their constraint (null, "newobj", "none-first": only the uses
the entry covers are tried). Everything is imported once, then WORKERS forked children share the
entries, each in its own sandbox; a child that an entry crashes (some extension types segfault on
hostile state: a denial of service, not a way out) is replaced by a fresh fork and the entry is
reported as crashing.

A pickle may call an allowed callable with any arguments it can build (REDUCE: `f(*args)`),
create an allowed class without `__init__` (NEWOBJ: `cls.__new__(cls, *args)`) and hand any
state to its `__setstate__` (BUILD). This harness does all three with path-likes (str, bytes,
`pathlib.Path`, `__fspath__` objects), `__index__`/`__str__`/`__int__` impostors and file modes,
in this throw-away process whose working folder, HOME and TMPDIR are inside SANDBOX_DIR. A
violation is anything that reaches outside the returned object:

- audit events (PEP 578) for processes, sockets, environment, chdir, dynamic code/library
  loading, imports of a module named by an argument, files opened for writing anywhere or for
  reading at a canary path, file-system changes through `os`/`shutil`;
- a new or modified file under SANDBOX_DIR, or a canary file read from native code (its atime
  moves: the file system is mounted relatime and the canaries' atime is set before their mtime).

Every module the allowlist names is imported BEFORE the audit hook is installed; library-internal
imports during a call are fine, an import whose name comes from an argument is not.
"""
from __future__ import annotations

import importlib
import inspect
import json
import os
import pathlib
import signal
import sys
import time
import warnings
from typing import Any, Callable

CANARY = "msc_canary"
CALL_SECONDS = 5.0
WORKERS = 2
# Imported lazily by allowed callables (torch.optim imports the compiler stack, which sets
# TORCHINDUCTOR_CACHE_DIR): imported up front, so a library's own import is not taken for a call's.
WARM_UP = ("torch._dynamo",)
# Reaching outside: recorded and then refused (the hook raises, so the operation never happens).
EVENTS_REFUSED = (
    "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
    "os.kill", "os.killpg", "os.putenv", "os.unsetenv", "os.chdir", "os.mkdir", "os.remove", "os.rmdir",
    "os.rename", "os.symlink", "os.link", "os.truncate", "os.chmod", "os.chown", "os.utime", "os.startfile",
    "shutil.copyfile", "shutil.copymode", "shutil.copystat", "shutil.copytree", "shutil.move", "shutil.rmtree",
    "shutil.make_archive", "shutil.unpack_archive", "socket.", "urllib.Request", "http.client.",
    "ftplib.", "smtplib.", "poplib.", "imaplib.", "nntplib.", "telnetlib.", "webbrowser.open",
    "tempfile.mkstemp", "tempfile.mkdtemp", "cpython.run_", "sys.addaudithook", "sys.settrace", "sys.setprofile",
)
# Reading or loading something an argument names: recorded when the canary shows in the arguments
# (libraries read their own data, import their own modules and compile their own templates).
EVENTS_IF_ARGUMENT = ("open", "import", "exec", "compile", "os.listdir", "os.scandir", "os.walk", "glob.glob",
                      "pathlib.Path.glob", "pathlib.Path.rglob", "mmap.__new__", "ctypes.dlopen", "marshal.load",
                      "pickle.find_class", "shutil.which")
# The codec registry imports `encodings.<normalised name>` for a codec name: only modules of that
# stdlib package (normalisation keeps the name inside it), so `_codecs.encode(x, name)` stays allowed.
IMPORTS_OK_PREFIX = ("encodings.",)
# Reads inside the interpreter's installation are library data (zoneinfo validates its keys to
# stay inside the tz database), even when an argument chose the file name.
LIBRARY_DATA = tuple(sorted({sys.prefix, sys.base_prefix, *__import__("site").getsitepackages(),
                             "/usr/share/zoneinfo"}))
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class Refused(Exception):
    """Raised by the audit hook to stop an operation that reaches outside."""


class Impostor:
    """An object every conversion turns into a canary: str(), int(), index(), float(), iteration."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __str__(self) -> str:
        return self.path

    __repr__ = __str__

    def __fspath__(self) -> str:
        return self.path

    def __index__(self) -> int:
        return 2

    __int__ = __index__

    def __float__(self) -> float:
        return 2.0

    def __iter__(self):
        return iter([self.path])

    def __len__(self) -> int:
        return 1


class _Timeout(BaseException):
    pass


def _alarm(_sig: int, _frame: Any) -> None:
    raise _Timeout()


class Watch:
    """The audit hook and the file-system checks; `current` names the entry being called."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.watched = [os.path.join(root, sub) for sub in ("cwd", "home", "tmp")]
        self.current: str | None = None
        self.found: dict[str, list[str]] = {}
        self.canaries = [os.path.join(root, "cwd", f"{CANARY}_{kind}") for kind in ("str", "path", "fspath",
                                                                                    "bytes", "impostor")]
        self.existing = os.path.join(root, "cwd", f"{CANARY}_existing")

    def note(self, what: str) -> None:
        if self.current is None:
            return
        items = self.found.setdefault(self.current, [])
        if what not in items and len(items) < 8:
            items.append(what)

    def hook(self, event: str, args: tuple) -> None:
        if self.current is None:
            return
        if event == "open":
            path, mode, flags = (list(args) + [None, None, None])[:3]
            text = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else str(path)
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
                (isinstance(flags, int) and bool(flags & WRITE_FLAGS))
            if writes:
                self.note(f"open({text!r}, {mode!r}) for writing")
                raise Refused(event)
            if CANARY in text and not text.startswith(LIBRARY_DATA):
                self.note(f"open({text!r}, {mode!r})")
            return
        if event == "compile" and _from_ast_parse():
            return  # ast.literal_eval / ast.parse: a syntax tree, no code object
        if event.startswith(EVENTS_REFUSED):
            self.note(f"{event}{_short(args)}")
            raise Refused(event)
        if event.startswith(EVENTS_IF_ARGUMENT) and CANARY in _short(args, 4000):
            if event == "import" and str(args[0]).startswith(IMPORTS_OK_PREFIX):
                return
            self.note(f"{event}{_short(args)}")

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        """A meta path finder in front of all others: sees every import, `importlib` ones included
        (they raise no `import` audit event), and lets the real finders do the work."""
        if self.current is not None and CANARY in name and not name.startswith(IMPORTS_OK_PREFIX):
            self.note(f"import {name}")

    def snapshot(self) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for folder, dirs, files in (w for top in self.watched for w in os.walk(top)):
            for name in dirs + files:
                path = os.path.join(folder, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                out[path] = (st.st_size, st.st_mtime_ns)
        return out

    def reset_canary(self) -> None:
        with open(self.existing, "wb") as fh:
            fh.write(b"canary\n")
        os.utime(self.existing, (1_000, 2_000))

    def canary_read(self) -> bool:
        return os.stat(self.existing).st_atime > 1_500


def _from_ast_parse() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name == "parse" and frame.f_code.co_filename.endswith("ast.py"):
            return True
        frame = frame.f_back
    return False


def _short(args: tuple, limit: int = 160) -> str:
    try:
        text = repr(args)
    except Exception:  # noqa: BLE001 - an object whose repr fails
        text = "<unrepresentable>"
    return text if len(text) < limit else text[:limit - 3] + "..."


def hostile_values(watch: Watch) -> list[Any]:
    """Path-likes of every kind (str, bytes, pathlib, an impostor whose __fspath__/__str__/
    __index__/__iter__ all lead to a canary), an existing file (native reads), a module name and a
    network address. The first five also serve as NEWOBJ arguments and BUILD states."""
    s, p, _, b, i = watch.canaries
    return [s, pathlib.Path(p), Impostor(i), os.fsencode(b), watch.existing, pathlib.Path(watch.existing),
            f"{CANARY}_module", (f"{CANARY}.invalid", 9)]


def _param_names(fn: Any) -> list[str]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return []
    return [p.name for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in ("self", "cls")]


def calls_for(obj: Any, values: list[Any], only: str | None = None) -> list[Callable[[], Any]]:
    """The REDUCE / NEWOBJ / BUILD invocations to try on one allowed object, within `only`."""
    if not callable(obj):
        return []
    names = _param_names(obj)
    out: list[Callable[[], Any]] = []
    if only is None:
        out.append(lambda: obj())
        for v in values:
            out += [lambda v=v: obj(v), lambda v=v: obj(v, "w"), lambda v=v: obj(v, False, 2)]
            if names:
                out.append(lambda v=v: obj(**{n: v for n in names}))
    elif only == "none-first":
        for v in values:
            out += [lambda v=v: obj(None, v), lambda v=v: obj(None, v, "w")]
            if len(names) > 1:
                out.append(lambda v=v: obj(None, **{n: v for n in names[1:]}))
    if isinstance(obj, type):
        for v in values[:5]:
            out.append(lambda v=v: obj.__new__(obj, v))

        def build(state: Any) -> None:
            inst = obj.__new__(obj)
            setstate = getattr(inst, "__setstate__", None)
            if setstate is not None:
                setstate(state)
            else:
                inst.__dict__.update(state)

        keys = names or ["path", "filename", "file", "fname"]
        for v in values[:5]:
            out.append(lambda v=v: build({k: v for k in keys}))
            out.append(lambda v=v: build((v,)))
    return out


def resolve(entry: str) -> Any:
    parts = entry.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(entry)


def allow_entries() -> dict[str, str | None]:
    """Every entry of the built-in allowlist -> its constraint (None: any call)."""
    from modelshield.scanner import datafiles

    out: dict[str, str | None] = {}
    for group in datafiles.load("policy", "allow.toml").values():
        for name, value in group.items():
            out[name] = value.get("only") if isinstance(value, dict) else None
    return out


def main() -> None:
    root, entries_file = os.path.abspath(sys.argv[1]), sys.argv[2]
    with open(entries_file, encoding="utf-8") as fh:
        entries: dict[str, str | None] = json.load(fh)
    warnings.simplefilter("ignore")
    results: dict[str, dict[str, Any]] = {}
    resolved: dict[str, Any] = {}
    for entry in entries:
        try:
            resolved[entry] = resolve(entry)
        except Exception as exc:  # noqa: BLE001 - a library that is not installed: nothing to call
            results[entry] = {"violations": [], "error": f"unresolved: {type(exc).__name__}: {exc}"[:200]}
    for module in WARM_UP:
        try:
            importlib.import_module(module)
        except ImportError:
            pass
    names = list(resolved)
    shares = {w: names[w::WORKERS] for w in range(WORKERS)}
    running: dict[int, tuple[int, str]] = {}  # pid -> (worker, its output file)
    for w in shares:
        running[_fork(root, w, shares[w], resolved, entries)] = (w, f"{root}/w{w}.jsonl")
    while running:
        pid, status = os.waitpid(-1, 0)
        worker, out = running.pop(pid)
        started = None
        for line in open(out, encoding="utf-8"):
            row = json.loads(line)
            if row.get("started"):
                started = row["entry"]
            else:
                results[row["entry"]] = {"violations": row["violations"], "error": row["error"]}
        if status != 0 and started is not None and started not in results:
            results[started] = {"violations": [], "error": f"crashed the interpreter (wait status {status})"}
        rest = [e for e in shares[worker] if e not in results]
        if rest:
            running[_fork(root, worker, rest, resolved, entries)] = (worker, out)
    print(json.dumps(results))


def _fork(root: str, worker: int, names: list[str], resolved: dict[str, Any], entries: dict) -> int:
    """A child that calls `names` in sandbox `root/w<worker>` and appends to `root/w<worker>.jsonl`."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        _child(os.path.join(root, f"w{worker}"), f"{root}/w{worker}.jsonl", names, resolved, entries)
    except BaseException:  # noqa: BLE001 - report through the exit status, never return to the parent's code
        code = 3
    os._exit(code)


def _child(root: str, out_file: str, names: list[str], resolved: dict[str, Any], entries: dict) -> None:
    import tempfile

    for sub in ("cwd", "home", "tmp"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    os.chdir(os.path.join(root, "cwd"))
    os.environ.update(HOME=os.path.join(root, "home"), TMPDIR=os.path.join(root, "tmp"))
    tempfile.tempdir = None
    out = open(out_file, "a", encoding="utf-8")  # noqa: SIM115 - the child's whole life

    def emit(entry: str, **kw: Any) -> None:
        out.write(json.dumps({"entry": entry, **kw}) + "\n")
        out.flush()

    watch = Watch(root)
    values = hostile_values(watch)
    watch.reset_canary()
    baseline = watch.snapshot()
    signal.signal(signal.SIGALRM, _alarm)
    sys.addaudithook(watch.hook)
    sys.meta_path.insert(0, watch)  # type: ignore[arg-type]
    for entry in names:
        emit(entry, started=True)
        began = time.monotonic()
        attempts = calls_for(resolved[entry], values, entries.get(entry))
        watch.current = entry
        error = None
        for attempt in attempts:
            signal.setitimer(signal.ITIMER_REAL, CALL_SECONDS)
            try:
                attempt()
            except _Timeout:
                error = f"a call took more than {CALL_SECONDS} s"
                break
            except BaseException:  # noqa: BLE001 - hostile arguments make most calls fail, as they should
                pass
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        watch.current = None
        now = watch.snapshot()
        changed = sorted(p for p in set(now) | set(baseline) if now.get(p) != baseline.get(p))
        if changed:
            watch.current = entry
            for path in changed[:4]:
                watch.note(f"file system change: {os.path.relpath(path, root)}")
            watch.current = None
            _clean(watch.watched, baseline)
        if watch.canary_read():
            watch.current = entry
            watch.note("read a canary file from native code")
            watch.current = None
        watch.reset_canary()
        baseline = watch.snapshot()
        emit(entry, violations=watch.found.get(entry, []), error=error, seconds=round(time.monotonic() - began, 4))


def _clean(tops: list[str], baseline: dict[str, tuple[int, int]]) -> None:
    """Remove what a violating call created, so the next entry starts from the same state."""
    import shutil

    for folder, dirs, files in (w for top in tops for w in os.walk(top, topdown=False)):
        for name in files:
            path = os.path.join(folder, name)
            if path not in baseline:
                os.unlink(path)
        for name in dirs:
            path = os.path.join(folder, name)
            if path not in baseline:
                shutil.rmtree(path, ignore_errors=True)


if __name__ == "__main__":
    main()
