"""LSST-Y1 cosmic shear: tomographic n(z), Limber C_ell with NLA intrinsic
alignments, bin-averaged xi+-(theta), Gaussian and non-Gaussian covariance,
scale cuts, mock data and the likelihood.

=================  ===========================================================
module             content
=================  ===========================================================
survey             SRD Y1 source n(z), equal-number tomography, photo-z
                   scatter, user n(z) files
limber             C_ell^{ij}, xi+-: :class:`ShearModel` (build with shear_model);
                   background and P(k) sources come from likelihoods.theory
curved, hankel     bin-averaged xi+-: curved-sky Legendre sums (default) and the
                   exact flat-sky Hankel transform
conventions        where codes differ (n(z) rows, NLA constant, neutrinos,
                   boost extrapolation) and the ``cosmolike`` preset
covariance         Gaussian analytic covariance; external covariance files
covariance_ng      super-sample and connected non-Gaussian terms (pyccl)
covariance_cache   the covariance on disk, keyed by its settings, checksummed
scalecuts          masks from l_max
mock, modelvector  mock data vectors, their HDF5 files; CosmoLike's format
likelihood         :class:`ShearLikelihood` and the workflow factory from_config
bias               emulator bias: Delta chi^2 per scale cut, parameter shifts
                   (the emulator_bias stage, pipeline.stages.emulator_bias)
=================  ===========================================================

Units: distances Mpc/h, k h/Mpc, P(k) (Mpc/h)^3, angles arcmin at interfaces.
"""
from .likelihood import ShearLikelihood, default_priors, from_config
from .limber import ShearModel, shear_model
from cosmopipe.likelihoods.theory.matter_power import power_source
from .survey import Survey, lsst_y1_survey, read_nz_file, survey_from_nz_file

__all__ = ["ShearLikelihood", "ShearModel", "Survey", "default_priors", "from_config", "lsst_y1_survey",
           "power_source", "read_nz_file", "shear_model", "survey_from_nz_file"]
