"""Loads each case repo with transformers AutoConfig(trust_remote_code=True), offline, in this subprocess.

Usage: HF_HUB_OFFLINE=1 python redteam_remote_code_proof.py MARKER DIR...; prints "<dir> <marker?>".
"""
import os
import sys

from transformers import AutoConfig

marker = sys.argv[1]
for folder in sys.argv[2:]:
    if os.path.exists(marker):
        os.remove(marker)
    try:
        AutoConfig.from_pretrained(folder, trust_remote_code=True)
    except Exception as exc:  # noqa: BLE001 - reported, the test asserts on the marker
        print("error", folder, type(exc).__name__, exc, file=sys.stderr)
    print(os.path.basename(folder), os.path.exists(marker))
