"""Cosmological likelihoods that turn predicted power spectra into parameter constraints."""
