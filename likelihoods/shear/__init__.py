"""LSST-Y1 cosmic shear: tomographic n(z), Limber C_ell with NLA intrinsic
alignments, bin-averaged xi+-(theta), Gaussian covariance, scale cuts, mock
data and the likelihood.

=============  ===============================================================
module         content
=============  ===============================================================
survey         SRD Y1 source n(z), equal-number tomography, photo-z scatter,
               user n(z) files
background     fast E(z), chi(z), D(z) for w0waCDM with massive neutrinos
power          nonlinear P(k, z) sources: ee2, hmcode, emulator, table
limber         C_ell^{ij}, xi+-: :class:`ShearModel` (build with shear_model)
hankel         exact bin-averaged flat-sky Hankel transform
covariance     Gaussian analytic covariance; external covariance files
scalecuts      masks from l_max
mock           mock data vectors and their HDF5 files
likelihood     :class:`ShearLikelihood` and the workflow factory from_config
bias           emulator bias: Delta chi^2 per scale cut, parameter shifts
               (the emulator_bias stage of likelihoods.stages)
=============  ===============================================================

Units: distances Mpc/h, k h/Mpc, P(k) (Mpc/h)^3, angles arcmin at interfaces.
"""
from .likelihood import ShearLikelihood, default_priors, from_config
from .limber import ShearModel, shear_model
from cosmopipe.likelihoods.theory.matter_power import power_source
from .survey import Survey, lsst_y1_survey, read_nz_file, survey_from_nz_file

__all__ = ["ShearLikelihood", "ShearModel", "Survey", "default_priors", "from_config", "lsst_y1_survey",
           "power_source", "read_nz_file", "shear_model", "survey_from_nz_file"]
