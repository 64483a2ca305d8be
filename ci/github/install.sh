#!/usr/bin/env bash
# Install modelshield for the GitHub Action. MODELSHIELD_VERSION: empty = the action's own checkout
# ($GITHUB_ACTION_PATH, so the scanner matches the action's ref); "1.2.3" = that release from the
# package index; anything else = a pip requirement (e.g. a git+https URL). MODELSHIELD_DRY_RUN=1
# prints the requirement instead of installing it.
set -euo pipefail
spec="${MODELSHIELD_VERSION:-}"
if [[ -z "$spec" ]]; then
  spec="${GITHUB_ACTION_PATH:?GITHUB_ACTION_PATH is not set}[formats]"
elif [[ "$spec" =~ ^[0-9][0-9a-z.+-]*$ ]]; then
  spec="modelshield[formats]==$spec"
fi
if [[ "${MODELSHIELD_DRY_RUN:-}" == 1 ]]; then
  printf '%s\n' "$spec"
  exit 0
fi
python -m pip install --disable-pip-version-check --quiet "$spec"
modelshield --version
