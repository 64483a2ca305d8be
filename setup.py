"""Map the card folders into the `modelshield` namespace (never as top-level `scanner`, `sbom`...)."""
from setuptools import find_packages, setup

FOLDERS = {"modelshield.scanner": "scanner", "modelshield.sbom": "sbom", "modelshield.advisories": "advisories"}

packages = find_packages(include=["modelshield", "modelshield.*"])
for prefix, folder in FOLDERS.items():
    packages += [prefix] + [f"{prefix}.{sub}" for sub in find_packages(where=folder)]

setup(
    packages=packages,
    package_dir={"modelshield": "modelshield", **FOLDERS},
    package_data={prefix: ["data/**/*", "schemas/*"] for prefix in FOLDERS},
)
