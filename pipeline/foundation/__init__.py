"""cosmopipe: COLA simulations, emulators and likelihoods for the nonlinear matter power spectrum.

One import name.  The repository keeps its four folders at the top (sims/, emulators/,
likelihoods/, pipeline/); the distribution installs them as subpackages of this one
(see ``[tool.setuptools.package-dir]`` in pyproject.toml)::

    cosmopipe.sims         COLA particle-mesh simulations, CAMB linear theory
    cosmopipe.emulators    PCA + MLP and hybrid emulators, EuclidEmulator2 references
    cosmopipe.likelihoods  LSST-Y1 shear, Planck, BAO, SN; theory providers; emcee sampling
    cosmopipe.pipeline     workflows, Dask clusters, run directories, the command line
"""
from cosmopipe._version import __version__

__all__ = ["__version__"]
