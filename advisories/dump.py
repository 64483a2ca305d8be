"""`advisories import`: read an OSV ecosystem dump (a zip of one JSON record per file, as the OSV
bucket publishes `PyPI/all.zip`) with no network and keep the ML-relevant packages in the index."""
from __future__ import annotations

import datetime as _dt
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from . import index, osv, tables
from .interface import Advisory
from .errors import InputError, RecordError

MAX_MEMBERS = 1_000_000
MAX_TOTAL = 4 * 1024 ** 3  # decompressed bytes read from one dump


@dataclass
class ImportResult:
    kept: int = 0
    read: int = 0
    malformed: list[str] = field(default_factory=list)
    date: _dt.datetime | None = None
    path: Path | None = None


def import_dump(dump: Path, target: Path | None = None) -> ImportResult:
    """Import `dump` into the index at `target` (default: the user cache). InputError when the
    file is not a readable zip or holds no OSV record at all; malformed members are skipped and
    counted."""
    path = target or index.index_path()
    result = ImportResult(path=path)
    kept: dict[str, tuple[Advisory, str]] = {}
    newest = ""
    total = 0
    try:
        archive = zipfile.ZipFile(dump)
    except (OSError, zipfile.BadZipFile) as exc:
        raise InputError(f"cannot read {dump}: {getattr(exc, 'strerror', None) or exc}") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise InputError(f"{dump}: {len(infos)} members, more than an OSV dump holds ({MAX_MEMBERS})")
        for info in infos:
            if info.is_dir() or not info.filename.endswith(".json"):
                continue
            if info.file_size > osv.MAX_RECORD_BYTES:
                result.malformed.append(f"{info.filename}: larger than {osv.MAX_RECORD_BYTES} bytes")
                continue
            try:
                with archive.open(info) as fh:
                    body = fh.read(osv.MAX_RECORD_BYTES + 1)
                total += len(body)
                if total > MAX_TOTAL:
                    raise InputError(f"{dump}: more than {MAX_TOTAL} bytes of records")
                adv = osv.loads(body, origin="imported")
            except (RecordError, zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError) as exc:
                if isinstance(exc, InputError):
                    raise
                result.malformed.append(f"{info.filename}: {exc}")
                continue
            result.read += 1
            newest = max(newest, adv.modified)
            if any(e.ecosystem == "PyPI" and tables.is_ml_package(e.name) for e in adv.affected):
                previous = kept.get(adv.id)
                if previous is None or previous[0].modified <= adv.modified:
                    kept[adv.id] = (adv, body.decode("utf-8"))
    if not result.read:
        raise InputError(f"{dump}: no OSV record in it" +
                         (f" ({len(result.malformed)} malformed, e.g. {result.malformed[0]})"
                          if result.malformed else ""))
    result.date = parse_timestamp(newest) or _dt.datetime.now(_dt.timezone.utc)
    result.kept = index.LocalIndex.write(path, kept.values(), kind="imported", date=result.date,
                                         source=str(Path(dump).resolve()))
    return result


def parse_timestamp(text: str) -> _dt.datetime | None:
    """An RFC 3339 timestamp as an aware datetime (None when unreadable)."""
    try:
        moment = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=_dt.timezone.utc)
