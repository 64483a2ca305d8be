"""Hostile folders for the gate tests, built in temporary folders at test time."""
from __future__ import annotations

import os
import re
from pathlib import Path

# protocol 0: os.system("echo MODELSHIELD") -> MS-PKL-001 + MS-PKL-003 (critical)
EVIL = b"cos\nsystem\n(S'echo MODELSHIELD'\ntR."
# a global whose module name carries ANSI escapes (unknown -> MS-PKL-002, high)
ANSI_GLOBAL = b"cevil\x1b[2J\x1b[31mmod\nthing\n)R."
HOSTILE_NAME = "a\x1b[2Jb\nverdict: clean\n.pkl"
ANNOTATION_NAME = "x,y::error title=forged::z.pkl"
SPACE_NAME = "my model\r\n% weights.pkl"
RAW_BYTES_NAME = b"bad\xff\xfe\x1b[0m name.pkl"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def hostile_folder(root: Path) -> Path:
    """A folder whose file names and pickle globals try to forge output."""
    root.mkdir(parents=True, exist_ok=True)
    for name in (HOSTILE_NAME, ANNOTATION_NAME, SPACE_NAME):
        (root / name).write_bytes(EVIL)
    (root / "ansi.pkl").write_bytes(ANSI_GLOBAL)
    fd = os.open(os.path.join(os.fsencode(root), RAW_BYTES_NAME), os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, EVIL)
    os.close(fd)
    return root


def waiver(rule: str = "MS-PKL-*", path: str = "*", expires: str = "2099-01-01", reason: str = "reviewed") -> str:
    return f'[[suppress]]\nrule = "{rule}"\npath = "{path}"\nreason = "{reason}"\nexpires = {expires}\n'
