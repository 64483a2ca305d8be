"""Key method: a bundle naming an EC public key by its hint, checked against the trusted keys."""
from __future__ import annotations

import datetime as _dt

from cryptography.hazmat.primitives import serialization

from ..findings import SignatureOutcome as O
from . import dsse
from .bundle import Bundle
from .interface import MethodResult
from .trust import TrustSet, key_hint, key_problem


class KeyMethod:
    NAME = "key"

    def accepts(self, bundle: Bundle) -> bool:
        return bundle.material == "public-key"

    def verify(self, bundle: Bundle, trust: TrustSet, now: _dt.datetime) -> MethodResult:
        hint = bundle.key_hint
        if hint is None and bundle.raw_public_key is not None:
            try:  # pre-1.0 bundles carried the PEM key: its hint names it
                hint = key_hint(serialization.load_pem_public_key(bundle.raw_public_key))
            except (ValueError, TypeError):
                return MethodResult(O.UNVERIFIABLE, "the bundle's embedded public key cannot be read")
        named = f"key sha256:{hint}" if hint else "an unnamed key"
        candidates = [k for k in trust.keys if hint is None or k.hint == hint]
        if not candidates:
            why = "no trusted public key is configured for this target" if not trust.keys else \
                "that key is not among the trusted public keys"
            return MethodResult(O.UNTRUSTED, f"signed with {named}; {why}", signer=named)
        problems = []
        for trusted in candidates:
            problem = key_problem(trusted.key)
            if problem:
                problems.append(problem)
                continue
            ok, legacy = dsse.verify(trusted.key, bundle)
            if ok:
                return MethodResult(O.VALID, "", signer=f"{trusted.label} (key sha256:{trusted.hint})",
                                    authentic=True, legacy=legacy)
        if problems and len(problems) == len(candidates):
            return MethodResult(O.UNVERIFIABLE, f"the trusted key cannot check this signature: {problems[0]}",
                                signer=named)
        if hint is None:
            return MethodResult(O.UNTRUSTED, "signed with an unnamed key that no trusted key verifies", signer=named)
        return MethodResult(O.INVALID, f"the DSSE signature does not verify with the trusted key it names ({named})",
                            signer=named)
