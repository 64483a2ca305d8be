"""Card licences -> CycloneDX licences (SPDX id where one matches, else a named licence)."""
from __future__ import annotations

import warnings
from typing import Any

from cyclonedx.model import XsUri
from cyclonedx.model.license import DisjunctiveLicense, LicenseAcknowledgement, LicenseExpression

# Hub licence ids that are not SPDX ids but name a licence with a well-known text.
_NOT_A_LICENCE = {"other", "unknown", "none", ""}


def factory() -> Any:
    """cyclonedx-python-lib's licence factory (SPDX ids, expressions, named licences)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            from cyclonedx.contrib.license.factories import LicenseFactory
        except ImportError:  # pragma: no cover - older 11.x
            from cyclonedx.factory.license import LicenseFactory
    return LicenseFactory()


def from_card(card: dict[str, Any]) -> list[DisjunctiveLicense | LicenseExpression]:
    """Licences stated by card data (`license`, `license_name`, `license_link`); [] if none."""
    raw = card.get("license")
    values = raw if isinstance(raw, list) else [raw] if raw else []
    name, link = card.get("license_name"), card.get("license_link")
    url = XsUri(str(link)) if isinstance(link, str) and link.startswith(("http://", "https://")) else None
    out: list[DisjunctiveLicense | LicenseExpression] = []
    make = factory()
    for value in values:
        text = str(value).strip()
        if text.lower() in _NOT_A_LICENCE:
            if name or url:
                out.append(DisjunctiveLicense(name=str(name or text), url=url))
            elif text:
                out.append(DisjunctiveLicense(name=text))
            continue
        licence = make.make_from_string(text, license_url=url)
        out.append(licence)
    if not values and (name or url):
        out.append(DisjunctiveLicense(name=str(name or "see licence link"), url=url))
    if len(out) > 1 and any(isinstance(x, LicenseExpression) for x in out):
        # The schema allows one expression or a list of licences, never both.
        expressions: list[DisjunctiveLicense | LicenseExpression] = [x for x in out if isinstance(x, LicenseExpression)]
        out = expressions[:1]
    for licence in out:  # stated by the model's own card: declared, not concluded by anyone
        licence.acknowledgement = LicenseAcknowledgement.DECLARED
    return out


def describe(licences: list[DisjunctiveLicense | LicenseExpression]) -> str:
    """Short text for properties and reports."""
    parts = []
    for x in licences:
        if isinstance(x, LicenseExpression):
            parts.append(x.value)
        else:
            parts.append(str(x.id or x.name))
    return ", ".join(parts)
