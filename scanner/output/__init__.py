"""Renderers: each turns a `Report` into one output syntax and reads nothing else."""
