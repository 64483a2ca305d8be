#!/usr/bin/env bash
# One scan for the GitHub Action: SARIF, the chosen report, the ML-BOM and a markdown summary in
# MODELSHIELD_OUTPUT_DIR, workflow annotations on stdout, the summary appended to the job summary,
# and step outputs. Exits 0 (the gate step fails the job) so that the uploads still run.
set -uo pipefail
out="${MODELSHIELD_OUTPUT_DIR:-modelshield-results}"
mkdir -p "$out"
read -r -d '' -a targets <<< "${MODELSHIELD_PATH:-.}" || true
[[ ${#targets[@]} -gt 0 ]] || targets=(.)

args=(scan "${targets[@]}" --fail-on "${MODELSHIELD_FAIL_ON:-high}"
      -f sarif -o "$out/modelshield.sarif" -f markdown -o "$out/summary.md")
case "${MODELSHIELD_POLICY:-}" in
  "") ;;
  none) args+=(--no-policy) ;;
  *) args+=(--policy "$MODELSHIELD_POLICY") ;;
esac
case "${MODELSHIELD_FORMAT:-json}" in
  ""|sarif|markdown|github) ;;
  json) args+=(-f json -o "$out/report.json") ;;
  gitlab) args+=(-f gitlab -o "$out/gl-sast-report.json") ;;
  text|columns) args+=(-f "$MODELSHIELD_FORMAT" -o "$out/report.txt") ;;
  *) echo "::error title=modelshield::unknown format input: use json, markdown, text, columns or gitlab"; exit 2 ;;
esac
sbom=""
if [[ -n "${MODELSHIELD_SBOM:-}" ]]; then
  sbom="$out/model.cdx.json"
  args+=(--sbom "$sbom" --phase "$MODELSHIELD_SBOM")
fi
if [[ "${MODELSHIELD_REQUIRE_SIGNATURE:-false}" == true ]]; then
  if ! modelshield scan -h | grep -q -- "--require-signature"; then
    echo "::error title=modelshield::require-signature needs a modelshield with signature verification (modelshield verify/sign)"
    echo "exit-code=2" >> "${GITHUB_OUTPUT:-/dev/null}"
    exit 0
  fi
  args+=(--require-signature)
fi
args+=(-f github)  # annotations: stdout goes to the job log

modelshield "${args[@]}"
code=$?

verdict=""
if [[ -s "$out/summary.md" ]]; then
  verdict="$(head -n 1 "$out/summary.md")"
  verdict="${verdict##*: }"
  if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then
    cat "$out/summary.md" >> "$GITHUB_STEP_SUMMARY"
  fi
fi
[[ -s "$sbom" ]] || sbom=""
sarif="$out/modelshield.sarif"
[[ -s "$sarif" ]] || sarif=""
{
  echo "exit-code=$code"
  echo "verdict=$verdict"
  echo "sarif=$sarif"
  echo "sbom=$sbom"
} >> "${GITHUB_OUTPUT:-/dev/null}"
exit 0
