"""The EDE + binned w(z) observables emulator: C_ell, sigma8 and the background of the
Planck / BAO / Pantheon likelihoods, emulated from a CAMB campaign.

Split along its seams: :mod:`.design` (the box, Latin hypercube, posterior points),
:mod:`.campaign` (CAMB at the design points), :mod:`.model` (PCA + Gaussian processes),
:mod:`.format` (HDF5 files, formats 2 and 3 read) and :mod:`.check` (Delta chi^2 in units
of the data errors).  The theory provider wrapping it is
:class:`cosmopipe.likelihoods.theory.providers.ObservablesProvider`; it is built with the
``observables`` workflow stage or ``cosmopipe observables``.
"""
from .campaign import (CL_BLOCKS, DEFAULT_CAMB, LMAX, MNU, PERTURBATION_ONLY, SCALARS, Z_GRID, ObservableTable,
                       background, camb_at, campaign_jobs, likelihood_requirements, merge_tables, observables_at,
                       run_campaign, solve_h0, table_from_results)
from .check import delta_chi2, delta_chi2_at_peak, report_markdown, validation_plot, write_report
from .design import DEFAULT_BOX, latin_hypercube, posterior_design
from .format import (FORMAT, FORMAT_VERSION, READS_VERSIONS, load_campaign, load_observables, load_table,
                     save_observables, save_table)
from .model import (BACKGROUND_BLOCKS, BACKGROUND_SCALARS, BLOCKS, COORDINATES, Block, EmulatorRangeError,
                    ObservablesEmulator, coordinate_box, to_coordinates, train_observables, unit_box)

__all__ = [
    "DEFAULT_BOX", "LMAX", "Z_GRID", "MNU", "BLOCKS", "BACKGROUND_BLOCKS", "BACKGROUND_SCALARS", "CL_BLOCKS",
    "SCALARS", "PERTURBATION_ONLY", "DEFAULT_CAMB", "FORMAT", "FORMAT_VERSION", "READS_VERSIONS",
    "EmulatorRangeError", "ObservableTable", "ObservablesEmulator", "Block", "latin_hypercube", "posterior_design",
    "observables_at", "camb_at", "background", "solve_h0", "run_campaign", "table_from_results", "merge_tables",
    "campaign_jobs", "likelihood_requirements", "train_observables", "save_table", "load_table", "load_campaign",
    "save_observables", "load_observables", "delta_chi2", "delta_chi2_at_peak", "report_markdown",
    "write_report", "validation_plot", "COORDINATES", "to_coordinates", "coordinate_box", "unit_box",
]
