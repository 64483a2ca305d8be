"""Renders each template case with plain jinja2 (as llama-cpp-python < 0.2.72 did) in this subprocess.

Usage: python redteam_render_proof.py MARKER; prints "<case> <marker written?>" per case.
"""
import os
import sys

import jinja2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from redteam_template_cases import CASES  # noqa: E402

marker = sys.argv[1]
for name, source in CASES.items():
    if os.path.exists(marker):
        os.remove(marker)
    try:
        jinja2.Environment().from_string(source.replace("MARK", marker)).render()
    except Exception as exc:  # noqa: BLE001 - reported, the test asserts on the marker
        print("error", name, type(exc).__name__, exc, file=sys.stderr)
    print(name, os.path.exists(marker))
