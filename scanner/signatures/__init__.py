"""OpenSSF model signatures (OMS v1.0 `model.sig`): verification, signing and the trust policy.

- `bundle`: reading the Sigstore bundle (DSSE envelope) under caps;
- `statement`: DSSE PAE and the in-toto statement (OMS v1.0 predicate, legacy v0.1);
- `manifest`: the folder as OMS serialises it (files, shards, ignore rules) and the comparison;
- `interface` + one module per method: `key`, `certificate`, `keyless` (Sigstore, optional);
- `trust`: the `[trust]` policy; `verify`: the orchestrator; `scan`: the hook inside a scan;
- `signing`: creating `model.sig` with an EC key or a certificate.
"""
from __future__ import annotations
