"""Orchestration of cosmopipe: command line, provenance, plotting and campaigns."""
from cosmopipe._version import __version__

__all__ = ["__version__"]
