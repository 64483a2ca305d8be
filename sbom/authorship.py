"""Who supplied and made the models, and who wrote the BOM: NTIA and BSI TR-03183-2 fields.

A Hub repository names its supplier (the namespace owner); a local folder names nobody, so the
user states it (`--supplier NAME`, `--manufacturer URL`, `--author "Name <email>"`). What
nobody stated stays absent and is listed in the BOM's notes (`modelshield:note`), never invented.
"""
from __future__ import annotations

from cyclonedx.model import XsUri
from cyclonedx.model.contact import OrganizationalContact, OrganizationalEntity

from .context import BomContext, ModelEntry


def provider(ctx: BomContext) -> None:
    """Fill supplier and manufacturer from the user's statement where the files state none;
    record every field that stays unknown."""
    who = ctx.attribution
    for entry in ctx.models + ctx.folders:
        comp = entry.component
        if comp.supplier is None and who.supplier:
            comp.supplier = OrganizationalEntity(name=who.supplier)
        if comp.manufacturer is None and who.manufacturer:
            comp.manufacturer = OrganizationalEntity(urls=[XsUri(who.manufacturer)])
        _record_gaps(ctx, entry)
    if not (who.author_name or who.author_email):
        ctx.gap("BOM author: not given (pass --author \"Name <email>\")")
    elif not who.author_email:
        ctx.gap("BOM author e-mail: not given (BSI TR-03183-2 asks for an e-mail or URL of the BOM's creator)")


def _record_gaps(ctx: BomContext, entry: ModelEntry) -> None:
    comp = entry.component
    label = f"{entry.kind} {entry.name}"
    if comp.supplier is None:
        ctx.gap(f"supplier of {label}: not stated by the files (pass --supplier)")
    if comp.manufacturer is None and entry.kind != "folder":
        ctx.gap(f"manufacturer of {label}: not stated by the files (pass --manufacturer URL)")
    if comp.version is None and entry.kind != "folder":
        ctx.gap(f"version of {label}: no commit or version is stated; the bom-ref carries the SHA-256 of its content")
    if entry.kind != "folder" and not len(comp.licenses):
        ctx.gap(f"licence of {label}: no model card states one")
    elif entry.kind != "folder":
        ctx.gap(f"concluded licence of {label}: not stated (the BOM records the licence the card declares; "
                "concluding the distribution licence is the BOM creator's decision)")


def bom_authors(ctx: BomContext) -> list[OrganizationalContact] | None:
    """metadata.authors from `--author` (name and e-mail parsed apart)."""
    who = ctx.attribution
    if not (who.author_name or who.author_email):
        return None
    return [OrganizationalContact(name=who.author_name, email=who.author_email)]
