#!/usr/bin/env bash
# Fail the job with the scan's exit code (0 passed, 1 blocked, 2 incomplete or error). A missing
# code means the scan step itself broke: never a pass.
set -euo pipefail
code="${MODELSHIELD_EXIT_CODE:-}"
case "$code" in
  0) echo "modelshield: passed" ;;
  1) echo "::error title=modelshield::blocked: findings at or above the fail-on severity (see the annotations and the job summary)" ;;
  2) echo "::error title=modelshield::incomplete: something could not be scanned or fully analysed (exit 2)" ;;
  *) echo "::error title=modelshield::the scan did not run to completion"; code=2 ;;
esac
exit "$code"
