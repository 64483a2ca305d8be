"""The dangerous-Python table (data/python_dangerous.toml), loaded once."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from ...findings import Severity
from ... import datafiles


@dataclass(frozen=True)
class Entry:
    """One row of data/python_dangerous.toml."""

    name: str
    category: str
    severity: Severity
    standalone: Severity
    why: str
    module: bool = False
    when_kw: str | None = None
    when_value: Any = None
    unless_kw: str | None = None
    safe_values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Behaviour:
    """A behaviour recognised by its shape (decode-then-exec, a write outside the cache...): [behaviour.*]."""

    rule: str | None  # None: the rule of the category the call site gives
    severity: Severity  # when a loader runs the file
    standalone: Severity | None  # observation severity otherwise; None: a threat wherever the file is
    what: str | None  # None: the category's
    category: str | None = None


@dataclass(frozen=True)
class Names:
    """The name groups the analyser's shapes use ([names]); see data/python_dangerous.toml."""

    builtins: frozenset[str]
    decoders: frozenset[str]
    sinks: frozenset[str]
    code_runners: frozenset[str]
    dangerous_modules: frozenset[str]
    importers: frozenset[str]
    write_path_methods: frozenset[str]
    openers: frozenset[str]
    env_getters: frozenset[str]
    env_dumps: frozenset[str]
    env_wrappers: frozenset[str]


@dataclass(frozen=True)
class Table:
    """The dangerous-Python table, loaded once."""

    entries: dict[str, Entry]
    categories: dict[str, dict[str, str]]
    behaviours: dict[str, Behaviour]
    names: Names
    command_tokens: tuple[str, ...]
    install_tokens: tuple[str, ...]
    exfil_hosts: tuple[str, ...]
    sensitive_paths: tuple[str, ...]
    secret_segments: frozenset[str]
    secret_pairs: tuple[str, ...]
    secret_prefixes: tuple[str, ...]
    allow: frozenset[str]

    def match(self, dotted: str | None) -> Entry | None:
        """The entry for a resolved dotted name (exact callable, or any attribute of a module entry)."""
        if not dotted:
            return None
        parts = dotted.split(".")
        if any(".".join(parts[:i]) in self.allow for i in range(len(parts), 0, -1)):
            return None
        if dotted in self.entries:
            return self.entries[dotted]
        for i in range(len(parts) - 1, 0, -1):
            entry = self.entries.get(".".join(parts[:i]))
            if entry and entry.module:
                return entry
        return None

    def is_secret_env(self, key: str) -> bool:
        """True for environment variable names that hold secrets (HF_TOKEN, AWS_SECRET_ACCESS_KEY...)."""
        up = key.upper()
        return bool(set(up.split("_")) & self.secret_segments) or any(p in up for p in self.secret_pairs) \
            or up.startswith(self.secret_prefixes)

    def exfil(self, host: str, path: str) -> bool:
        """True for URLs of services used to receive stolen data (host suffix + optional path prefix)."""
        for item in self.exfil_hosts:
            h, _, p = item.partition("/")
            if (host == h or host.endswith("." + h)) and path.lstrip("/").startswith(p):
                return True
        return False


@functools.lru_cache(maxsize=1)
def load_table() -> Table:
    """Parse data/python_dangerous.toml."""
    raw = datafiles.load("python_dangerous.toml")
    entries = {}
    for row in raw["entry"]:
        entries[row["name"]] = Entry(
            name=row["name"], category=row["category"], severity=Severity.parse(row["severity"]),
            standalone=Severity.parse(row.get("standalone", "low")), why=row["why"],
            module=row.get("kind") == "module", when_kw=row.get("when_kw"), when_value=row.get("when_value"),
            unless_kw=row.get("unless_kw"), safe_values=tuple(row.get("safe_values", ())))
    behaviours = {key: Behaviour(rule=row.get("rule"), severity=Severity.parse(row["severity"]),
                                 standalone=Severity.parse(row["standalone"]) if "standalone" in row else None,
                                 what=row.get("what"), category=row.get("category"))
                  for key, row in raw["behaviour"].items()}
    names = Names(**{key: frozenset(values) for key, values in raw["names"].items()})
    sus = raw["suspicious"]
    return Table(entries=entries, categories=raw["category"], behaviours=behaviours, names=names,
                 command_tokens=tuple(sus["command_tokens"]), install_tokens=tuple(sus["install_tokens"]),
                 exfil_hosts=tuple(sus["exfil_hosts"]), sensitive_paths=tuple(sus["sensitive_paths"]),
                 secret_segments=frozenset(sus["secret_env_segments"]), secret_pairs=tuple(sus["secret_env_pairs"]),
                 secret_prefixes=tuple(sus["secret_env_prefixes"]), allow=frozenset(raw["allow"]["names"]))
