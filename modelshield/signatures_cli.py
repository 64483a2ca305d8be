"""`modelshield verify` and `modelshield sign`: OpenSSF model signatures (OMS `model.sig`).

Thin: options -> scanner.signatures -> one outcome line (or JSON) -> exit code. `verify` checks
the signature only (it hashes the files itself); `scan` checks it as part of the single pass.
"""
from __future__ import annotations

import enum
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from modelshield.cli_common import fail, write_output
from modelshield.scanner import env

if TYPE_CHECKING:
    from modelshield import Policy

EXIT = {"valid": 0, "invalid": 1, "untrusted": 1, "unsigned": 1, "unverifiable": 2, "not-checked": 2}


class VerifyFormat(str, enum.Enum):
    text = "text"
    json = "json"


def verify(
    model: Path = typer.Argument(..., help="The model folder (its model.sig is verified)."),
    signature: Optional[Path] = typer.Option(None, "--signature", help="The signature file [default: MODEL/model.sig]."),
    public_key: list[Path] = typer.Option([], "--public-key", help="Trusted EC public key (PEM); repeatable."),
    certificate_chain: list[Path] = typer.Option([], "--certificate-chain", help="Trusted CA certificate(s) (PEM): the chain must end at one of them; repeatable."),
    identity: list[str] = typer.Option([], "--identity", help="Pinned signer identity: certificate SAN (email, URI, DNS) or keyless identity; repeatable."),
    issuer: Optional[str] = typer.Option(None, "--issuer", help="Keyless: the OIDC issuer that must have vouched for the identity."),
    sigstore_trust_root: Optional[Path] = typer.Option(None, "--sigstore-trust-root", help="Keyless: Sigstore trusted_root.json, verified offline (needs modelshield[sigstore])."),
    trust: Optional[Path] = typer.Option(None, "--trust", help="Trust policy file ([trust] table); added to the options above."),
    model_name: Optional[str] = typer.Option(None, "--model-name", help="The model name the signature must carry [default: the folder's name]."),
    format: VerifyFormat = typer.Option(VerifyFormat.text, "--format", "-f", help="Output format."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the result here (default: stdout)."),
) -> None:
    """Verify a model folder's OMS signature. Exit 0 valid; 1 invalid, untrusted or unsigned; 2 unverifiable or bad input."""
    from modelshield.scanner.signatures import trust as trust_mod
    from modelshield.scanner.errors import TrustError
    from modelshield.scanner.signatures.verify import verify_folder

    if not model.is_dir():
        fail(f"{model}: not a folder (OMS signatures cover a model folder)")
    try:
        policy = trust_mod.TrustPolicy.from_file(str(trust)) if trust else trust_mod.TrustPolicy()
        trusted = policy.for_target([str(model), str(model.resolve())])
        for path in public_key:
            trusted.keys += trust_mod.load_public_keys(str(path))
        for path in certificate_chain:
            trusted.cas += trust_mod.load_certificates(str(path))
    except TrustError as exc:
        fail(str(exc))
    trusted.identities += identity
    trusted.issuers += [issuer] if issuer else []
    if sigstore_trust_root is not None:
        if not sigstore_trust_root.is_file():
            fail(f"{sigstore_trust_root}: no such file")
        trusted.sigstore_trust_root = str(sigstore_trust_root)
    trusted.model_name = model_name or trusted.model_name
    if not trusted.source:
        trusted.source = "command line"
    result = verify_folder(str(model), str(signature) if signature else None, trusted,
                           expected_name=os.path.basename(os.path.abspath(model)))
    from modelshield.scanner.findings import to_dict

    if format is VerifyFormat.json:
        text = json.dumps(to_dict(result), indent=2) + "\n"
    else:
        text = render_text(to_dict(result))
    write_output(text, output)
    raise typer.Exit(EXIT[result.outcome.value])


def render_text(sig: dict) -> str:
    """A few lines: outcome, reason, signer, coverage."""
    from modelshield.scanner.output import escape
    from modelshield.scanner.output.text import signature_line

    lines = [signature_line(sig)]  # artefact strings (file and signer names) through the one escaping helper
    for key, items in (sig.get("differences") or {}).items():
        lines.append("  " + escape.text(f"{key}: {', '.join(items)}"))
    if sig.get("uncovered"):
        lines.append("  " + escape.text(f"not covered (still scanned by `scan`): {', '.join(sig['uncovered'])}"))
    return "\n".join(lines) + "\n"


def sign(
    model: Path = typer.Argument(..., help="The model folder to sign."),
    private_key: Path = typer.Option(..., "--private-key", help="EC private key (PEM; P-256/384/521). Password: MODELSHIELD_KEY_PASSWORD."),
    certificate_chain: Optional[Path] = typer.Option(None, "--certificate-chain", help="The signing certificate and its intermediates (PEM); the bundle then carries the chain instead of a key hint."),
    signature: Optional[Path] = typer.Option(None, "--signature", help="Where to write the bundle [default: MODEL/model.sig]."),
    ignore_path: list[str] = typer.Option([], "--ignore-path", help="Path inside the folder to leave out (recorded in the signature); repeatable."),
    method: str = typer.Option("files", "--method", help="Serialisation: files (one digest per file) or shards."),
    shard_size: int = typer.Option(1_000_000_000, "--shard-size", help="Shard serialisation: bytes per shard."),
    allow_symlinks: bool = typer.Option(False, "--allow-symlinks", help="Sign the files symbolic links point to (inside the folder)."),
    model_name: Optional[str] = typer.Option(None, "--model-name", help="The model name to sign for [default: the folder's name]."),
) -> None:
    """Sign a model folder with an EC key (optionally with its certificate chain): writes model.sig (OMS v1.0).

    Keyless Sigstore signing needs an identity provider and is not offered; use model-signing for it.
    """
    from modelshield.scanner.signatures.signing import sign_folder
    from modelshield.scanner.errors import SigningError

    password = env.key_password()
    try:
        signed = sign_folder(str(model), str(private_key), certificate_chain=str(certificate_chain)
                             if certificate_chain else None, password=password,
                             signature=str(signature) if signature else None, method=method,
                             shard_size=shard_size, ignore_paths=ignore_path, allow_symlinks=allow_symlinks,
                             model_name=model_name)
    except SigningError as exc:
        fail(str(exc))
    typer.echo(f"signed {signed.files} file(s) as {signed.signer}: {signed.path} "
               f"(root sha256:{signed.root_digest}, bundle sha256:{signed.bundle_sha256})")


def apply_trust(policy: "Policy", trust: Optional[Path], require_signature: bool) -> None:
    """`--trust FILE` and `--require-signature` onto the loaded policy (its own [trust] kept)."""
    if trust is not None:
        from modelshield.scanner.signatures.trust import TrustPolicy
        from modelshield.scanner.errors import TrustError

        try:
            extra = TrustPolicy.from_file(str(trust))
        except TrustError as exc:
            fail(str(exc))
        policy.trust = policy.trust.merged(extra) if policy.trust else extra
    policy.require_signature = policy.require_signature or require_signature


def register(app: typer.Typer) -> None:
    """Add `verify` and `sign` to the main CLI."""
    app.command(name="verify", epilog="\b\nExamples:\n  modelshield verify ./model\n"
                                      "  modelshield verify ./model --identity release@example.org --trust trust.toml")(verify)
    app.command(name="sign", epilog="\b\nExamples:\n  modelshield sign ./model --private-key key.pem\n"
                                    "  modelshield sign ./model --private-key key.pem --signature out/model.sig")(sign)
