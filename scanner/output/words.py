"""Small wording helpers shared by the renderers: plurals and sizes in one unit system."""
from __future__ import annotations

_UNITS = ("B", "kB", "MB", "GB", "TB")


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 file', '2 files', '0 findings'."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def size(n: int) -> str:
    """Decimal SI units (1 MB = 10^6 bytes), as the progress bar and `--max-download 5GB` use."""
    value = float(n)
    for unit in _UNITS:
        if value < 1000 or unit == _UNITS[-1]:
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"
