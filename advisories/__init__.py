"""modelshield.advisories: OSV advisories for the loaders that open an artefact."""
if __name__ != "modelshield.advisories":  # the bare folder, imported from the repo root
    raise ImportError(f"the folder {__name__!r} is the package modelshield.advisories: import it under that name "
                      "(pip install -e .), never as a top-level package")
