#!/usr/bin/env bash
# Release a model with modelshield, in any CI system (the same steps as examples/release.yml):
#
#   examples/release.sh MODEL_DIR DEV_BOM OUT_DIR
#
# 1. scan the release model (exit 1 blocked, 2 incomplete: the release stops) and, from the same
#    pass, write the deployment ML-BOM linked to the development BOM of the model at intake;
# 2. validate that BOM;
# 3. sign the model (OpenSSF model signing, `modelshield sign`) when MODELSHIELD_SIGNING_KEY names
#    an EC private key (password in MODELSHIELD_KEY_PASSWORD); without a key the release is
#    unsigned and says so (set MODELSHIELD_REQUIRE_SIGNING=1 to refuse that);
# 4. list what to attach to the release: the BOM, the signature and the SARIF.
set -euo pipefail
if [[ $# -ne 3 ]]; then
  echo "usage: $0 MODEL_DIR DEV_BOM OUT_DIR" >&2
  exit 2
fi
model=$1 dev_bom=$2 out=$3
mkdir -p "$out"

modelshield scan "$model" --fail-on "${MODELSHIELD_FAIL_ON:-high}" \
  -f sarif -o "$out/modelshield.sarif" -f text \
  --sbom "$out/model.cdx.json" --phase deployment --from-bom "$dev_bom"
modelshield sbom validate "$out/model.cdx.json"

assets=("$out/model.cdx.json" "$out/modelshield.sarif")
if [[ -n "${MODELSHIELD_SIGNING_KEY:-}" ]]; then
  modelshield sign "$model" --private-key "$MODELSHIELD_SIGNING_KEY" --signature "$out/model.sig"
  assets+=("$out/model.sig")
elif [[ "${MODELSHIELD_REQUIRE_SIGNING:-0}" == 1 ]]; then
  echo "release.sh: MODELSHIELD_SIGNING_KEY is not set and MODELSHIELD_REQUIRE_SIGNING=1: not releasing unsigned" >&2
  exit 2
else
  echo "release.sh: no MODELSHIELD_SIGNING_KEY: this release is NOT signed" >&2
fi
printf 'attach: %s\n' "${assets[@]}"
