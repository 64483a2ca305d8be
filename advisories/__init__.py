"""modelshield.advisories: OSV advisories for the loaders that open an artefact."""
