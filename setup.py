"""Map the card folders into the `modelshield` namespace (never as top-level `scanner`, `sbom`...).

`modelshield/scanner`, `modelshield/sbom` and `modelshield/advisories` are symbolic links to the
card folders, so that tools run from the repository root (mypy, editors, `python -m pytest`) see
the packages as users import them; the wheel maps the folders themselves (`package_dir`).
"""
from setuptools import find_packages, setup

FOLDERS = {"modelshield.scanner": "scanner", "modelshield.sbom": "sbom", "modelshield.advisories": "advisories"}

packages = find_packages(include=["modelshield"])
for prefix, folder in FOLDERS.items():
    packages += [prefix] + [f"{prefix}.{sub}" for sub in find_packages(where=folder)]

setup(
    packages=packages,
    package_dir={"modelshield": "modelshield", **FOLDERS},
    package_data={"modelshield": ["py.typed"], **{prefix: ["data/**/*", "schemas/*"] for prefix in FOLDERS}},
)
