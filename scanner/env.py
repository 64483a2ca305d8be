"""The environment variables modelshield reads, in one place (as huggingface_hub's `constants`).

Each is read when asked for, not at import: callers and tests may change the environment between
scans. Malformed values fall back to the default (a setting never turns into a traceback).

| variable | meaning |
|---|---|
| SOURCE_DATE_EPOCH | reproducible time stamps of reports and BOMs: whole seconds since 1970-01-01 UTC |
| MODELSHIELD_DOWNLOAD_TIMEOUT | seconds a URL download may go without bringing data |
| MODELSHIELD_CACHE | folder of the local advisory index and the result store (default: the platform's user cache) |
| RAY_ADDRESS | `--executor ray`: the cluster to use (read here for the reachability check; Ray reads it too) |
| MODELSHIELD_STORE | the result store: a sqlite path or postgresql:// URL; `off` disables it (as `--no-store`) |
| MODELSHIELD_KEY_PASSWORD | password of the private key `modelshield sign` uses |
| NO_COLOR, TERM | no ANSI colour in text output when NO_COLOR is set (https://no-color.org) or TERM=dumb |
| OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS | set to 1 in the analysis workers' zygote, not read |

The Hugging Face variables (HF_HOME, HF_HUB_OFFLINE, HF_TOKEN...) are read by huggingface_hub.
"""
from __future__ import annotations

import datetime as _dt
import os


def source_date_epoch() -> _dt.datetime | None:
    """SOURCE_DATE_EPOCH as a UTC time; None when unset, not a whole number or out of range."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not epoch.isdigit():
        return None
    try:
        return _dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        return None


def download_timeout(default: float) -> float:
    """MODELSHIELD_DOWNLOAD_TIMEOUT in seconds (a positive number), else `default`."""
    try:
        value = float(os.environ.get("MODELSHIELD_DOWNLOAD_TIMEOUT", default))
    except ValueError:
        return default
    return value if value > 0 else default


def cache_dir() -> str | None:
    """MODELSHIELD_CACHE, or None when unset or blank."""
    return os.environ.get("MODELSHIELD_CACHE", "").strip() or None


def ray_address() -> str | None:
    """RAY_ADDRESS, or None when unset or blank."""
    return os.environ.get("RAY_ADDRESS", "").strip() or None


def store() -> str | None:
    """MODELSHIELD_STORE, or None when unset or blank."""
    return os.environ.get("MODELSHIELD_STORE", "").strip() or None


def key_password() -> bytes | None:
    """MODELSHIELD_KEY_PASSWORD as bytes, or None when unset or empty."""
    password = os.environ.get("MODELSHIELD_KEY_PASSWORD")
    return password.encode() if password else None


def color_allowed() -> bool:
    """False when NO_COLOR is set to anything but the empty string, or TERM is `dumb`."""
    return not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def single_threaded_native_libraries() -> None:
    """In an analysis worker's zygote: native libraries imported later (numpy under h5py) must not
    start thread pools, whose stacks and arenas would count against the worker's memory cap."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
