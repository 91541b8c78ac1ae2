"""Registry of the public data sets the likelihoods read: files, origin, checksums.

Every data set lives under one *data directory* that the user provides; nothing is
shipped with cosmopipe.  The directory is, in order of precedence,

1. the explicit ``data_dir`` argument (a workflow's ``data_dir:`` key), or
2. the environment variable ``COSMOPIPE_DATA``;

otherwise :func:`resolve_data_dir` raises a :class:`DataError` that says how to set one.
Inside it, files keep the layout of the reference collection (``bao/``, ``sn/``,
``cmb/``, ``lensing/``, ``des_y1/``, ``lsst_y1/``).

Each file records the raw GitHub URL it is downloaded from (pinned to a commit), its
size in bytes and its sha256.  :func:`dataset_path` checks that every file of a data
set is present and intact and raises a message naming the data set, the file, where it
was looked for and the URL to fetch it from.  Checksums come in three grades:

* ``verified``   sha256 of the file as distributed, confirmed byte for byte;
* ``unverified`` sha256 reported by a third party for a file that was too large to
  obtain here (ACT DR4 windows, DES Y1 covariance): a mismatch only warns;
* ``none``       no sha256 known; where the source repository's git blob id is known
  (Pantheon and Pantheon+ covariances) its prefix is checked instead.

:func:`download` fetches missing files with urllib and verifies them; it needs nothing
from the rest of cosmopipe.  Command line::

    python -m cosmopipe.likelihoods.data_registry list
    python -m cosmopipe.likelihoods.data_registry check  [NAME ...] [--data-dir DIR]
    python -m cosmopipe.likelihoods.data_registry download NAME [--data-dir DIR]
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import sys
import tempfile
import urllib.parse
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .base import LikelihoodError

__all__ = [
    "ENV_VAR", "DataError", "MissingDataError", "ChecksumError", "DataFile", "Dataset", "DATASETS",
    "resolve_data_dir", "dataset_path", "dataset_file", "verify_file", "download", "run_command",
]

ENV_VAR = "COSMOPIPE_DATA"


class DataError(LikelihoodError):
    """A data directory, data set or data file problem; the message says how to fix it."""


class MissingDataError(DataError):
    """A file of a data set is not in the data directory."""


class ChecksumError(DataError):
    """A data file is present but its content is not the registered one."""


# Source repositories, pinned at the snapshot commits the reference collection was taken from.
_REPOS = {
    "bao_data": ("CobayaSampler/bao_data", "bb0c1c9009dc76d1391300e169e8df38fd1096db"),
    "montepython": ("brinckmann/montepython_public", "5b365b093982099b926a0c0c169697c9dc6cbbc4"),
    "sn_data": ("CobayaSampler/sn_data", "61d96434cafc2770928322c38e5a750e686368ae"),
    "pantheon": ("dscolnic/Pantheon", "7eb29dc87ba223b4ec8457cd3cccba1216c36fb7"),
    "pyactlike": ("ACTCollaboration/pyactlike", "1cac8c5d047bc2cad991890f2ebf1d8e3fb483b3"),
    "planck_lite_py": ("heatherprince/planck-lite-py", "2c0d0f67e59ce781654cf62dd7fb10757b0e60be"),
    "cocoa": ("CosmoLike/cocoa", "01ab54275a28c28f03d70bbebeb5990e1abbbc3f"),
    "planck_supp": ("CobayaSampler/planck_supp_data_and_covmats", "621f4c5db33b08f4d28527e3459a922476f49618"),
    "des_data": ("CobayaSampler/des_data", "d85645dced20ca75b559d47db3da2e112846df9a"),
    "cocoa_lsst_y1": ("SBU-COSMOLIKE/cocoa_lsst_y1", "8be1501467eba1a89a34b4b6d3565e4534a7f115"),
}


def _raw_url(repo: str, source: str) -> str:
    name, commit = _REPOS[repo]
    return f"https://raw.githubusercontent.com/{name}/{commit}/{urllib.parse.quote(source, safe='/+')}"


@dataclass(frozen=True)
class DataFile:
    """One file of a data set.

    path      location relative to the data directory (POSIX separators)
    url       where to download it (None: cannot be downloaded, see ``note``)
    size      bytes, or None when unknown
    sha256    hex digest, or None when unknown
    checksum  'verified', 'unverified' or 'none' (see the module docstring)
    git_blob  prefix of the source repository's git blob id (checked when sha256 is None)
    gzip_ok   the file may be stored gzip-compressed as ``path + '.gz'``; checksums refer
              to the uncompressed content
    note      anything a user needs to know to obtain it
    """

    path: str
    url: str | None
    size: int | None
    sha256: str | None
    checksum: str = "verified"
    git_blob: str | None = None
    gzip_ok: bool = False
    note: str = ""


@dataclass(frozen=True)
class Dataset:
    """A group of files read together by one likelihood."""

    name: str
    description: str
    references: str
    directory: str
    files: tuple[DataFile, ...]

    def file(self, name: str) -> DataFile:
        """The registered file whose path ends with ``name``."""
        for f in self.files:
            if f.path == name or f.path.endswith("/" + name):
                return f
        raise DataError(f"data set {self.name!r} has no file {name!r}; "
                        f"its files: {', '.join(f.path for f in self.files)}")


def _dataset(name, description, references, directory, repo, source_dir, rows, **extra) -> Dataset:
    """Build a Dataset from rows ``(name, size, sha256[, repo, source])`` relative to
    ``directory`` (data dir) and ``source_dir`` (in ``repo``)."""
    files = []
    for row in rows:
        fname, size, sha = row[:3]
        frepo, source = (row[3], row[4]) if len(row) > 3 else (repo, f"{source_dir}/{fname}".lstrip("/"))
        url = _raw_url(frepo, source) if frepo else None
        files.append(DataFile(f"{directory}/{fname}", url, size, sha, **extra.get(fname, {})))
    return Dataset(name, description, references, directory, tuple(files))


_LENS = "smicadx12_Dec5_ftl_mv2_ndclpp_p_teb_consext8"

DATASETS: dict[str, Dataset] = {d.name: d for d in [
    # -- BAO ------------------------------------------------------------------------
    _dataset("bao_sixdf_2011", "6dFGS BAO r_s/D_V at z = 0.106", "Beutler et al. 2011, arXiv:1106.3366",
             "bao", None, "", [
        ('sixdf_2011_bao.txt', 458, '75e8812f1086e8b82c278c79a2db1061b3cb86de31a6665bbd514a401bd51248'),
             ], **{"sixdf_2011_bao.txt": {"note": (
                 "no data file exists upstream: the point (z=0.106, r_s/D_V = 0.336 +- 0.015, "
                 "rs_rescale 1.027369826) is inline in CobayaSampler/cobaya "
                 "cobaya/likelihoods/bao/sixdf_2011_bao.yaml; write it as one line "
                 "'0.106 0.336 0.015 rs_over_DV' (comment lines start with #)")}}),
    _dataset("bao_sdss_mgs", "SDSS DR7 MGS BAO, tabulated chi^2(alpha) at z = 0.15",
             "Ross et al. 2015, arXiv:1409.3242", "bao", "bao_data", "", [
        ('sdss_MGS_prob.txt', 6006, 'c252e18fefc69b76e5918852944739b440c8fbbedffd4477cb72f532627de4db'),
             ]),
    _dataset("bao_boss_dr12", "BOSS DR12 BAO-only consensus D_M r_d,fid/r_d and H r_d/r_d,fid, 6x6 covariance",
             "Alam et al. 2017, arXiv:1607.03155", "bao", "bao_data", "", [
        ('BAO_consensus_covtot_dM_Hz.txt', 288, '05c04829c8edc117870efe809494593a23de6c35547f8b66760a5250804b65cf'),
        ('BAO_consensus_results_dM_Hz.txt', 203, '30e784fa08e7eddb2fdd1ab09411424e67aa9b75df58f4bb330a889c9b9c478e', 'montepython', 'data/COMBINEDDR12_BAO_consensus_dM_Hz/BAO_consensus_results_dM_Hz.txt'),
        ('sdss_DR12Consensus_bao.dat', 147, 'fc43f1cd9c815bb58b09f4d8d1d272d2c4ec57e05e4893e2121c20dc08f4f862'),
             ]),
    _dataset("bao_boss_dr12_final", "BOSS DR12 BAO+RSD consensus (D_M, H, f sigma_8), 9x9 covariance",
             "Alam et al. 2017, arXiv:1607.03155", "bao", "bao_data", "", [
        ('final_consensus_covtot_dM_Hz_fsig.txt', 739, 'dea6d8d4893d2b84772f9b83d0653bf7d4ee81a0aeb63ce04859e20d0ad3a289'),
        ('sdss_DR12Consensus_final.dat', 216, 'eae45d2629dc1214b351716b3ff9a6f5a22f170b71e3d0e93aeeddc169d80e30'),
             ]),
    _dataset("bao_smallz_2014", "MontePython's Gaussian 6dF + MGS low-z BAO file",
             "Beutler et al. 2011; Ross et al. 2015", "bao", "montepython", "data", [
        ('bao_smallz_2014.txt', 1413, '0dc91a5c66fab4e2db6919b26198450b267ddfc7e689c552a6eee9d145d8ad5e'),
             ]),
    _dataset("bao_desi_dr1", "DESI DR1 (2024) Gaussian BAO, D/r_d, combined and per tracer",
             "DESI 2024, arXiv:2404.03000, 2404.03001, 2404.03002", "bao/desi_dr1", "bao_data", "", [
        ('desi_2024_eboss_gaussian_bao_Lya_GCcomb_cov.txt', 102, 'afb75cc336706698d63df6a074e002cb9a8ecd190b34ed4cb140df7c0d584070'),
        ('desi_2024_eboss_gaussian_bao_Lya_GCcomb_mean.txt', 99, 'e6b09123521f91c209361c055c5ba6b7f2d50fd41ae5e000e1c5d1c18ccd98f7'),
        ('desi_2024_gaussian_bao_ALL_GCcomb_cov.txt', 2170, 'bbafa9074b51cf1a45e0d10e4f37db8c0e80a5d1d1788857abb7fc49fb21abcc'),
        ('desi_2024_gaussian_bao_ALL_GCcomb_mean.txt', 376, 'dd2873a0b88459a491af3c0c0307ba059f62df9211d5b976760f310565a1be68'),
        ('desi_2024_gaussian_bao_BGS_BRIGHT-21.5_GCcomb_z0.1-0.4_cov.txt', 15, '71235724a2d79f8532b6b9dd08457a41f8c6977414786dd154c851676e08abb6'),
        ('desi_2024_gaussian_bao_BGS_BRIGHT-21.5_GCcomb_z0.1-0.4_mean.txt', 58, 'b47109f842b2b79c5952ecbfd4ea39add97183723abe2477e9709683b86557aa'),
        ('desi_2024_gaussian_bao_ELG_LOPnotqso_GCcomb_z1.1-1.6_cov.txt', 62, '6ade793349c090abb07a7431a5f75d0199af88998dda2fec6a3b848b29fb414f'),
        ('desi_2024_gaussian_bao_ELG_LOPnotqso_GCcomb_z1.1-1.6_mean.txt', 88, 'cb8e5aecec6e4b58b9f316421a05b8e4c9ed9bcf5ec1b5d0fb2330ae3bec5266'),
        ('desi_2024_gaussian_bao_LRG+ELG_LOPnotqso_GCcomb_z0.8-1.1_cov.txt', 62, '6ab34a65089f798b3bcae1910c5151a9bf415847281f2554dabc355d4e590431'),
        ('desi_2024_gaussian_bao_LRG+ELG_LOPnotqso_GCcomb_z0.8-1.1_mean.txt', 88, '96219da1f1877c7107848e58ec321370349a617c2e5cba3310141368600a22e5'),
        ('desi_2024_gaussian_bao_LRG_GCcomb_z0.4-0.6_cov.txt', 62, 'c2f304ae5790448888fc272ad8d9126a1688b756f0422d815ec0fbc4bb3be773'),
        ('desi_2024_gaussian_bao_LRG_GCcomb_z0.4-0.6_mean.txt', 88, 'ea7ce09ebd710d06203fac2e9a9bc0d560c5daca2704d8ae8656bb6b5e105f38'),
        ('desi_2024_gaussian_bao_LRG_GCcomb_z0.6-0.8_cov.txt', 62, 'cf17b81f8e62c9a96ee5a7deba5e1cdd2fb707cf8177bbee99511a144a420da4'),
        ('desi_2024_gaussian_bao_LRG_GCcomb_z0.6-0.8_mean.txt', 88, '6ce4744f4772f84a23fd212856278db4c85ac003539e78012d9382a91c26f09b'),
        ('desi_2024_gaussian_bao_Lya_GCcomb_cov.txt', 102, 'f93a5d57e0039f1f8b2424f9d97cbf777000d7f293add0ecb72728ea6cfc8ae6'),
        ('desi_2024_gaussian_bao_Lya_GCcomb_mean.txt', 98, 'b6894a6662ebe83a7adb1e153a87c5e13701dd8270b2472693f6b8263c4cadd6'),
        ('desi_2024_gaussian_bao_QSO_GCcomb_z0.8-2.1_cov.txt', 15, 'ccd4322915db76660fb16ebef2091a605beb76b89050236632d6c7fe822814cd'),
        ('desi_2024_gaussian_bao_QSO_GCcomb_z0.8-2.1_mean.txt', 59, '12bf41993f73c7ce9fb0acb7e8943c13cd539fce0fec7f864a1a15a9dd172647'),
             ]),
    _dataset("bao_desi_dr2", "DESI DR2 Gaussian BAO, D/r_d, combined and per tracer",
             "DESI 2025, arXiv:2503.14738, 2503.14739", "bao/desi_dr2", "bao_data", "desi_bao_dr2", [
        ('desi_gaussian_bao_ALL_GCcomb_cov.txt', 2547, '252a143274c8a07c78694c119617d36594f6d7965d00319ca611c6ffb886e509'),
        ('desi_gaussian_bao_ALL_GCcomb_mean.txt', 472, '9ac154ab583ce759c0f7eef3c978c7c70a6ead2d18774caceadf1a350a640585'),
        ('desi_gaussian_bao_BGS_BRIGHT-21.35_GCcomb_cov.txt', 15, '06d7260009fa0030171753fe2f8ece92c5e167da5fdf57f3a98aa2dfe9dc142f'),
        ('desi_gaussian_bao_BGS_BRIGHT-21.35_GCcomb_mean.txt', 63, '06fc72ca4f4b4a03973c514bf7568c856716ff76a8c05df02e42b93aca769d59'),
        ('desi_gaussian_bao_ELG_LOPnotqso_GCcomb_z1.1-1.6_cov.txt', 62, '8d1afedca817a80f44c9dd492101d6653f1f353a59da6f24a6bcb0f0d80ad6bc'),
        ('desi_gaussian_bao_ELG_LOPnotqso_GCcomb_z1.1-1.6_mean.txt', 98, '75d2dd246d2f17145f202fccf80da0bd723a67270a76f83b5be204161e204794'),
        ('desi_gaussian_bao_LRG+ELG_LOPnotqso_GCcomb_cov.txt', 62, '8c8f5270dc3db24cbecd9aee1e463819a93e4fbfb0805fdf18357c39e5a8e95a'),
        ('desi_gaussian_bao_LRG+ELG_LOPnotqso_GCcomb_mean.txt', 98, 'c34585b9afdb683e68c2522e9715950fd24b63435ceb8a94ae52acd5d2626f4a'),
        ('desi_gaussian_bao_LRG_GCcomb_z0.4-0.6_cov.txt', 62, '1fc0b21fd34a0e194f3fce2601ea3d1f411b03c7c1006c5b865b9f66991b8740'),
        ('desi_gaussian_bao_LRG_GCcomb_z0.4-0.6_mean.txt', 98, '86336445497058eee24ecf255e8a7486d8b46d709daa7a919566a58818dbed0c'),
        ('desi_gaussian_bao_LRG_GCcomb_z0.6-0.8_cov.txt', 62, '16fa8c323f54139ef1249a24f8f9c8663dbac7890d5a6d9c3b97e84ee89847ae'),
        ('desi_gaussian_bao_LRG_GCcomb_z0.6-0.8_mean.txt', 98, '6d2f38d0727b2aefcd82fdd5a1c6df5a7d34ad8459437c195d575b5ad0c6ab32'),
        ('desi_gaussian_bao_Lya_GCcomb_cov.txt', 102, '02a049dbf3a1cd391189948516378a694abfd8d5b5cba1a15e97c6c5cf972357'),
        ('desi_gaussian_bao_Lya_GCcomb_mean.txt', 99, '9b4ab92080d038d0a0a5d76b9abead4e3919d7227e343d1e7feab7103e1f30cb'),
        ('desi_gaussian_bao_QSO_GCcomb_cov.txt', 62, '7445c6bca01e2732b15ff29e832cc7b682c27d096f3b3ae8a171b63b20e8f6da'),
        ('desi_gaussian_bao_QSO_GCcomb_mean.txt', 98, '9bffdd0bf27615ab5225e5232fcdf53e16318bf9d06b031a2756d6e89368dadd'),
             ]),
    # -- SN Ia ------------------------------------------------------------------------
    _dataset("sn_pantheon_binned", "Pantheon 40-bin compressed SN Ia with systematic covariance",
             "Scolnic et al. 2018, arXiv:1710.00845", "sn/pantheon/binned", "pantheon", "Binned_data", [
        ('lcparam_DS17f.txt', 2735, '085daafcc4ae19ece72e69d69ac84fb0a4a1f52626ac4782e46571e6d679b000'),
        ('sys_DS17f.txt', 17662, '642391b0a56ee4f0c3275e85376fbdb880c1c289503520fd32b3920c19f4d7d9'),
             ]),
    _dataset("sn_pantheon", "Pantheon 1048 SNe Ia (statistical errors only without sn_pantheon_sys)",
             "Scolnic et al. 2018, arXiv:1710.00845", "sn/pantheon", "sn_data", "Pantheon", [
        ('full_long.dataset', 354, '7ece3a2525871fa645e6f2772eb01b25e4931e3f78cd82b317cb0d28966d8f15'),
        ('lcparam_full_long.txt', 69326, '9d0e3d2d2b3b460fd2d1a474f2b69a4c22c67d3e15bb2f0efdefed1607ba29a1', 'pantheon', 'lcparam_full_long.txt'),
        ('lcparam_full_long_zhel.txt', 70345, '4e865e819eda499530b04da6965ab7aac0407878789b105732cb1f9b99a64323'),
             ]),
    _dataset("sn_pantheon_sys", "Pantheon 1048x1048 systematic covariance (mag^2)",
             "Scolnic et al. 2018, arXiv:1710.00845", "sn/pantheon", "pantheon", "", [
                 ("sys_full_long.txt", None, None),
             ], **{"sys_full_long.txt": {"checksum": "none", "git_blob": "94c6b1a3fdcd", "note": (
                 "identical copy (same git blob) in CobayaSampler/sn_data "
                 "Pantheon/sys_full_long.txt")}}),
    _dataset("sn_pantheon_plus", "Pantheon+ 1701 light curves (m_b_corr, zHD, zHEL, diagonal errors)",
             "Brout et al. 2022, arXiv:2202.04077; Scolnic et al. 2022, arXiv:2112.03863",
             "sn/pantheon_plus", "sn_data", "PantheonPlus", [
        ('Pantheon+SH0ES.dat', 579283, '1cb0fc379ef066afdc2ffd1857681cc478024570d8a3eba284fb645775198cf8'),
        ('config.dataset', 157, '80e7104bec01b27ab1d1ad0adcc66effc3df28138c5e5da992d775b5171b93cb'),
             ]),
    _dataset("sn_pantheon_plus_cov", "Pantheon+ 1701x1701 STAT+SYS covariance (mag^2)",
             "Brout et al. 2022, arXiv:2202.04077", "sn/pantheon_plus", "sn_data", "PantheonPlus", [
                 ("Pantheon+SH0ES_STAT+SYS.cov", None, None),
             ], **{"Pantheon+SH0ES_STAT+SYS.cov": {"checksum": "none", "git_blob": "d1a1498154e7", "gzip_ok": True,
                                                    "note": (
                 "also in PantheonPlusSH0ES/DataRelease "
                 "Pantheon+_Data/4_DISTANCES_AND_COVAR/ (same git blob); may be stored gzipped "
                 "as Pantheon+SH0ES_STAT+SYS.cov.gz")}}),
    # -- CMB --------------------------------------------------------------------------
    _dataset("planck_2018_plik_lite", "Planck 2018 plik_lite v22 TT,TE,EE binned, foreground-marginalised",
             "Planck 2018 V, arXiv:1907.12875; Prince & Dunkley 2019, arXiv:1909.05869",
             "cmb/planck2018_plik_lite", "planck_lite_py", "data/planck2018_plik_lite", [
        ('blmax.dat', 16125, 'c28ade0fa5270c7e87ba07bdcb68aef8783b132b352bfaa36c04d17694ab4014'),
        ('blmin.dat', 16125, '325b351cbf8f694556bb13e98f285344e8d66811bb8eef18bcdcf1626518719d'),
        ('bweight.dat', 185925, '8afcbd8bad769e2de96bacd80177e6543f96b2b406e6c2da1fd0d26718c9e415'),
        ('c_matrix_plik_v22.dat', 3006160, 'ad90378c50bd67841764179c90ae6711fa4317c649966ab2b0712143b31e0a32'),
        ('cl_cmb_plik_v22.dat', 37393, 'dac0d9d493213e77c940a10a968cf0da3c5730bae60e1356c4cd8bcff96377ff'),
             ]),
    _dataset("planck_lite_py_test_spectrum", "planck-lite-py's test spectrum D_ell TT, TE, EE (muK^2)",
             "Prince & Dunkley 2019, arXiv:1909.05869",
             "cmb/planck2018_plik_lite", "planck_lite_py", "data", [
        ('Dl_planck2015fit.dat', 252744, '9634ebabc2d236484176e0f570f12eb81205b6a284674b7bfb15e2ca705be972'),
             ]),
    _dataset("planck_2018_lowl_tt_2bins", "Planck 2018 low-ell TT compressed to two Gaussian bins",
             "Prince & Dunkley 2019, arXiv:1909.05869",
             "cmb/planck2018_lowl/lowl_TT_2bins", "planck_lite_py", "data/planck2018_low_ell", [
        ('CTT_bin_low_ell_2018.dat', 150, '5d8220fc16b9f9faa330b20b85751988843ae30386a9a5faf2b2f560d7ee65b7'),
        ('blmax_low_ell.dat', 50, 'e4449d2230545c8da4cd2b6ab228de2a953b9b113bee16d06bde50b152ddb400'),
        ('blmin_low_ell.dat', 50, '526718b75ee8689e97e6e4162c5319f0a937c19fe31d5c37f1927813184badf8'),
        ('bweight_low_ell.dat', 700, '5973300301bfedad94ec1c7d298afa4f3745207eb33094a173d581444a995b1a'),
        ('plmin_low_ell.dat', 25, '3c8ec006511f3a5e5ebe8a3585d58df7f075dd4bac6eed0aa95d695af3039bc0'),
             ]),
    _dataset("planck_sroll2_lowE", "SRoll2 low-ell EE likelihood table, ell = 2..29",
             "Pagano et al. 2020, arXiv:1908.09856",
             "cmb/planck2018_lowl/sroll2_lowE", "cocoa", "Cocoa/external_modules/data/planck", [
        ('sroll2_prob_table.txt', 2187000, '38ac5776ecf18dd5f59ce20dbc1650ee425ce35ab6da0d645c9a8ada8e504417'),
             ]),
    _dataset("planck_2018_lensing", "Planck 2018 lensing bandpowers, conservative 8 <= L <= 400 (native and "
             "CMB-marginalised)", "Planck 2018 VIII, arXiv:1807.06210",
             "lensing/planck2018", "planck_supp", "lensing/2018", [
        ('planck_calib.paramnames', 24, 'bc0155dd4026afff8e100a84ff3b3aae3c121b57071312a5cf19c47b79c6489b'),
        (f'{_LENS}.dataset', 806, '7bc37c8c17191c857425c0b1213c2df66cc99360a831009e8be765da4fe8d51c'),
        (f'{_LENS}_CMBmarged.dataset', 519, '0a07733b77522b369766ca678a328397deed4c2ae8a588af3bc9fd53141dfdeb'),
        (f'{_LENS}_CMBmarged_cov.dat', 2053, '1ce3e79dbe1e72858eb50ade73b5ba18a8c5f17a6d48c9f8708d3c65d567b2a4'),
        (f'{_LENS}_CMBmarged_lens_delta_window/window1.dat', 703, 'f60906b71823351552bb2b6b2b90d0d42e0bff5ce74a1f10f153ac92fdc00e7f'),
        (f'{_LENS}_CMBmarged_lens_delta_window/window2.dat', 703, '2944563cb8ceec52716677b8b9b1a5183f068a584bc8c61190d0f3479871b533'),
        (f'{_LENS}_CMBmarged_lens_delta_window/window3.dat', 703, '061c3f49d004b66e9466b73cacf7408942d6a0312052e7c279f64a6db3414cfc'),
        (f'{_LENS}_CMBmarged_lens_delta_window/window4.dat', 703, '521d8b11823c631ea3ffca4e3259491a896b2a10a21952b67264ad957bc6a182'),
        (f'{_LENS}_CMBmarged_lens_delta_window/window5.dat', 703, '44010273e787013d3bea3bcdfc692aa5c25833c680dcdd6ec9efe6cda93d25a8'),
        (f'{_LENS}_CMBmarged_lens_delta_window/window6.dat', 703, '3e82460f4b4db176166dc5990917e04adfd3e481cfe6d037fd7c11522eee9221'),
        (f'{_LENS}_CMBmarged_lens_delta_window/window7.dat', 703, '38ab12bdcdfb5cd89f63bd05a59106f795244d2dd814df8f9528378676cc3986'),
        (f'{_LENS}_CMBmarged_lens_delta_window/window8.dat', 703, 'ea4c7a29d85bfa4b6e529b3a75708b803dc8ce622f705764c0b7659630cc7fd5'),
        (f'{_LENS}_CMBmarged_lens_delta_window/window9.dat', 703, '37e5356ec9640337d6d2368c7837076bccbd7508bb81a517248d96549fbf4b67'),
        (f'{_LENS}_CMBmarged_lensing_fiducial_correction.dat', 210, '26f97ac6c742656cf5f6f8b9fc5c22c6e6384de9c9340b33bbcd47685c3fcb28'),
        (f'{_LENS}_bandpowers.dat', 590, '0113871c95b026dbf544c21f3c0cd667bea25ad146dddb93db4189cff660a6f0'),
        (f'{_LENS}_cov.dat', 2061, 'fdd19b43dacd3c65a3d092442c291401a3497cc4fddf9ce08bb098d5a428efc0'),
        (f'{_LENS}_lens_delta_window/window1.dat', 147689, '96420a282e53a730f586234b93de651a73aea2dcdececbcb06a4f62c2f867d07'),
        (f'{_LENS}_lens_delta_window/window2.dat', 147823, 'd6cf6e596965af6caecbe52dd01f465ad3384f1dd098126288cbe6ebed29e8ec'),
        (f'{_LENS}_lens_delta_window/window3.dat', 147950, '487e1e1a9e4e8740dcc34a7c31e4168655db074a8739e067a4e59a8f7fc750e1'),
        (f'{_LENS}_lens_delta_window/window4.dat', 147961, '670a647e10ca0f7cd5ca9c5465f5f19e9b27978f836262e49c9420b8defb58dd'),
        (f'{_LENS}_lens_delta_window/window5.dat', 147826, '0be8a018e39addf52cf6bae689e7d483fa441582a5966c7592d4cac577657608'),
        (f'{_LENS}_lens_delta_window/window6.dat', 147507, 'f95bb176d365bc78cd3fedcf98e220cadf25f09711960124197ea74104a308c6'),
        (f'{_LENS}_lens_delta_window/window7.dat', 147291, '63e595b7dc6585ad280497f3b2c3e438db2c09cc482a781a89b8667349d48598'),
        (f'{_LENS}_lens_delta_window/window8.dat', 147357, '59eadaa2c60c487574b1cee5b0ee9dc84140bb4063bb93f48f8dcdcf768851c4'),
        (f'{_LENS}_lens_delta_window/window9.dat', 147315, 'a7d5bbb519e100ec87d8e8b5ce4e1bef017ef66e9c2a37a39f458b230e86cb8f'),
        (f'{_LENS}_lensing_fiducial_correction.dat', 210, 'd186f5cc43556f8a4178a275fc73142b69b7ba1976fea383bfb5763f4e133cd6'),
        (f'{_LENS}_window/window1.dat', 627, 'da21c0c323f3d43b896c0b08832801d553812000e82aa4d30581574f1483c5f6'),
        (f'{_LENS}_window/window2.dat', 836, '5a610ba5e9a158cdb4bf1b787c241d980d53f4937141fe7602a107fa6b04996f'),
        (f'{_LENS}_window/window3.dat', 855, '29cee1f5ec34a643a6c7091489e58995ee0680f2d2a79df5a99275116fcd07cc'),
        (f'{_LENS}_window/window4.dat', 855, 'deda1ebff7dcf07c7da63e54ceb90b1fb6cc20d52b22b06b37f705583e805f56'),
        (f'{_LENS}_window/window5.dat', 855, '15f649bec0438cdab5c9efab0bed6a92ae139bff00c74e0cf99e89217f72a183'),
        (f'{_LENS}_window/window6.dat', 855, 'c110f460478ad285899b50ed495f11de2c0f8c7e67f11f4eaabd0d1506e523ca'),
        (f'{_LENS}_window/window7.dat', 855, '7225217ea62d9909cbca9adb4b7351072040f925f462a7f47f2b6c262c12fd76'),
        (f'{_LENS}_window/window8.dat', 855, '9952b5112111eb998078f7387e01abf139d4b720e17b54097167312f8e2d8d0e'),
        (f'{_LENS}_window/window9.dat', 874, '6389ed1301c686cfe4d4d9b237ff63363423918657163fc59bd806909e191db6'),
             ]),
    _dataset("act_dr4_lite", "ACT DR4 foreground-marginalised TT/TE/EE (windows must be added)",
             "Aiola et al. 2020, arXiv:2007.07288; Choi et al. 2020, arXiv:2007.07289",
             "cmb/act_dr4_lite", "pyactlike", "pyactlike/data", [
        ('Binning.dat', 1962, 'fecc173092400f1b53505378a8b0af33f69c4ee2f11fbafdc6d0c1a5e6574738'),
        ('bf_ACTPol_WMAP_lcdm.minimum.theory_cl', 491918, '44ca6ffed7d9654580e7d5b02917075f2326a78224efc484d5f02c6443450ca8'),
        ('bf_ACTPol_lcdm.minimum.theory_cl', 491918, '3c2c9b8b44a96f7f45d4acd35723eb28178b83dc64932a14f695fb400258b802'),
        ('c_matrix_ap.dat', 540808, '3e550bca7f192749e221b9d6db0c323c1a85ca257c398880dea472be43867fea'),
        ('cl_cmb_ap.dat', 16640, '86a2a3d3cf5bd3b024681ad78fa67d614a9a56ede77ef41716623b45405d6f95'),
                 ("coadd_bpwf_15mJy_191127_lmin2.npz", 31765014,
                  "a4c58bbe02ccb8c132af4a47cf53ec07b261a39b709c598e8b95f6a0d0349225"),
                 ("coadd_bpwf_100mJy_191127_lmin2.npz", None,
                  "365de9b3f8b9598c433dbc4f49dc8b996393262d43a526e1a6e257cbb871a270"),
             ], **{"coadd_bpwf_15mJy_191127_lmin2.npz": {"checksum": "unverified"},
                   "coadd_bpwf_100mJy_191127_lmin2.npz": {"checksum": "unverified"}}),
    # -- galaxy surveys -----------------------------------------------------------------
    _dataset("des_y1", "DES Y1 3x2pt data vector, n(z), scale cuts (covariance must be added)",
             "DES Collaboration 2018, arXiv:1708.01530", "des_y1", "des_data", "", [
        ('DES.paramnames', 616, '2f38d46296651f17cca7d99e3afd98bed93e6e95d3ff37a0687b65a4b0e0a091'),
        ('DES_1YR_final.dataset', 718, 'cd5a319d5d8bc6b772316605d99fabaad4930a69824d32c2f0b4830c979dbe69'),
        ('DES_1YR_final_gammat.dat', 9095, '7896341880d4cd005a2a7d1a8d1ca9debcd332ac885db30e22dc986ea464f358'),
        ('DES_1YR_final_nz_lens.dat', 36902, 'afe4776930844a62aa33f26dc4384db479b37ed66c8662e745c60794bd88e0a3'),
        ('DES_1YR_final_nz_source.dat', 32334, 'b9a04714f635d205ce1da269b8d345f1469c44f91f8c698256af2ae864202c7b'),
        ('DES_1YR_final_selection.dat', 1101, '9568c4c413e2868c3dd89e4807452de379f2b0bb3a4359356c82df33d1901777'),
        ('DES_1YR_final_theta_bins.dat', 536, 'b6d225d059e924013628244367050e849d8768266b761bfac0a7443746886be9'),
        ('DES_1YR_final_wtheta.dat', 2284, '0c6e3b170692b541723edbf791b6bd7911d2de110240e0718be8140eecaf3549'),
        ('DES_1YR_final_xim.dat', 4551, 'd4f5b7df8a972309f8ee6fd54b419ad4bfe47704df3f8f1c121910bee56e7a18'),
        ('DES_1YR_final_xip.dat', 4547, '78df3097d182c15545684e3b886fd2afc9bb4306382e672a8cb4d3d6cccc0302'),
                 ("DES_1YR_final_cov.dat", 9012110,
                  "977a1d1dfc08c490eedfa99e8a7a81e16def73b4d03f3b99ac944d4e0e5a988c"),
             ], **{"DES_1YR_final_cov.dat": {"checksum": "unverified"}}),
    _dataset("lsst_y1", "Simulated LSST Y1 3x2pt set-up of CoCoA (n(z), masks, baryon PCA); the "
             "covariance cov_lsst_y1 is not public in these snapshots",
             "SBU-COSMOLIKE/cocoa_lsst_y1", "lsst_y1", "cocoa_lsst_y1", "data", [
        ('LSST_Y1_M1_GGL0.05.dataset', 325, 'eb351abb89d7ae81938966eae434f62846d706e62fca5295d7527042ae8a80c1'),
        ('LSST_Y1_M1_GGLOLAP0.05.mask', 12930, '9d28394a2ae9174c53227e5ac1da74c22bdada7344db252efe12684ec93ff481'),
        ('LSST_Y1_M2_GGL0.05.dataset', 325, '03e023eefb71c3d3565a7fd9781d43296750d979d6422c52571ff842cab15e54'),
        ('LSST_Y1_M2_GGLOLAP0.05.mask', 12930, 'cdd8defb1d5e01951871a180c3e91598bd6656cc019ad815a5799cd084f7d415'),
        ('LSST_Y1_M3_GGL0.05.dataset', 325, '138ddb34602074a999e3f7f9662b6f30ad074870ef7b86004589ef4a271338b1'),
        ('LSST_Y1_M3_GGLOLAP0.05.mask', 12930, '5bb53abe8b5f359f45cfc08068d7f5e02784e613c146b154f18e3b09b6777925'),
        ('LSST_Y1_M4_GGL0.05.dataset', 325, 'b6492a516a127b72565fdfcf452a4680ad9d2ad992c77d7a0a83636647d96790'),
        ('LSST_Y1_M4_GGLOLAP0.05.mask', 12930, '3c5a3b29d26cc838d80a9abf91c3b24b5d879cc6bc848f3f6b15d154664a6a99'),
        ('LSST_Y1_M5_GGL0.05.dataset', 325, '135a0c85b9b542cc257a07ab483a2ec0b055e9592de77af4517642ee9926b6f7'),
        ('LSST_Y1_M5_GGLOLAP0.05.mask', 12930, '69d3931d9dac04e9ae42d0e4926b41948770cd289424f0c43278df547ca91bef'),
        ('LSST_Y1_M6_GGL0.05.dataset', 325, 'b332363a286092f4faf2ff977a60dbb764d4fd0af670890790324ea5a8b183fe'),
        ('LSST_Y1_M6_GGLOLAP0.05.mask', 12930, 'c02849eb2cd2d6c6ccd4a3508013ae79695e24a0550c9b58b257f1954d8d4d9a'),
        ('lens_LSSTY1.nz', 45000, 'dcdd1b15476287ffdd7091d605a684ac2c7807728ad2147155b2632f1280b256'),
        ('ones.mask', 78000, '929a72103ca195fe60e42ddaafe2557b56ad614a15781c1277b3e9cfdf9f86fd'),
        ('pca.txt', 314449, '52b50538e307c1ee8787266fc022dc9366c75b3a92045ddd01c455a4d0d75de5'),
        ('source_LSSTY1.nz', 45000, 'de0bd0ee395ade11ca08af7fbee3b414528ff4c628fda8c56a1da76befe995f8'),
             ]),
]}


# -- locating and checking files ----------------------------------------------------

def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data directory: ``data_dir`` if given, else $COSMOPIPE_DATA; it must exist."""
    if data_dir is not None and str(data_dir) != "":
        where, origin = Path(data_dir).expanduser(), "data_dir"
    elif os.environ.get(ENV_VAR):
        where, origin = Path(os.environ[ENV_VAR]).expanduser(), f"environment variable {ENV_VAR}"
    else:
        raise DataError(
            "no data directory: set `data_dir: /path/to/data` in the workflow YAML or "
            f"`export {ENV_VAR}=/path/to/data` (the folder holding bao/, sn/, cmb/, lensing/); "
            "`python -m cosmopipe.likelihoods.data_registry download NAME --data-dir DIR` fills it")
    if not where.is_dir():
        raise DataError(f"data directory {str(where)!r} (from {origin}) does not exist or is not a directory")
    return where.resolve()


def _origin(data_dir) -> str:
    if data_dir is not None and str(data_dir) != "":
        return "data_dir"
    return f"${ENV_VAR}"


def _local_path(root: Path, f: DataFile) -> Path | None:
    """The file on disk (plain, or gzipped where allowed), or None."""
    plain = root / f.path
    if plain.is_file():
        return plain
    if f.gzip_ok and (root / (f.path + ".gz")).is_file():
        return root / (f.path + ".gz")
    return None


def _digests(path: Path) -> tuple[int, str, str]:
    """(size, sha256, git blob sha1) of the content (decompressed for .gz)."""
    packed = path.suffix == ".gz"
    opener = gzip.open if packed else open
    if packed:
        # The blob header needs the uncompressed size before the content.
        size = 0
        with opener(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                size += len(chunk)
    else:
        size = path.stat().st_size
    sha, blob = hashlib.sha256(), hashlib.sha1(f"blob {size}\0".encode())
    with opener(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
            blob.update(chunk)
    return size, sha.hexdigest(), blob.hexdigest()


_VERIFIED: set = set()   # (path, size on disk, mtime_ns) already checked in this process


def verify_file(path: Path, f: DataFile, dataset: str = "?") -> None:
    """Raise ChecksumError when ``path`` does not hold the registered content of ``f``."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key in _VERIFIED:
        return
    if f.sha256 is None and f.git_blob is None:
        _VERIFIED.add(key)
        return
    size, sha, blob = _digests(path)
    where = f"data set {dataset!r}: file {f.path!r} at {str(path)!r}"
    fetch = f"; download it again from {f.url}" if f.url else ""
    if f.sha256 is not None and sha != f.sha256:
        message = (f"{where} has sha256 {sha} ({size} bytes), expected {f.sha256}"
                   + (f" ({f.size} bytes)" if f.size else ""))
        if f.checksum == "unverified":
            warnings.warn(message + " -- the expected value comes from an unverified third-party "
                          "manifest, so the file is used anyway", stacklevel=3)
        else:
            raise ChecksumError(message + ": the file is corrupt or a different version" + fetch)
    elif f.sha256 is None and not blob.startswith(f.git_blob):
        raise ChecksumError(f"{where} has git blob id {blob[:12]}..., expected {f.git_blob}...: "
                            "the file is corrupt or a different version" + fetch)
    _VERIFIED.add(key)


def _missing_message(ds: Dataset, f: DataFile, root: Path, origin: str) -> str:
    text = (f"data set {ds.name!r} ({ds.description}): file {f.path!r} not found in "
            f"{str(root)!r} (data directory from {origin})")
    if f.gzip_ok:
        text += f" (nor {f.path + '.gz'!r})"
    if f.url:
        text += (f". Download it from {f.url} to {str(root / f.path)!r}, or run "
                 f"`python -m cosmopipe.likelihoods.data_registry download {ds.name} --data-dir {root}`")
    else:
        text += ". It cannot be downloaded automatically"
    if f.note:
        text += f" (note: {f.note})"
    return text


def _get_dataset(name: str) -> Dataset:
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def dataset_path(name: str, data_dir: str | os.PathLike | None = None, verify: bool = True) -> Path:
    """The folder of data set ``name`` (``<data dir>/<Dataset.directory>``) after checking
    that every one of its files is there and, with ``verify``, intact.

    Raises MissingDataError (naming the file, where it was looked for and its URL) or
    ChecksumError."""
    ds = _get_dataset(name)
    root = resolve_data_dir(data_dir)
    for f in ds.files:
        path = _local_path(root, f)
        if path is None:
            raise MissingDataError(_missing_message(ds, f, root, _origin(data_dir)))
        if verify:
            verify_file(path, f, ds.name)
    return root / ds.directory


def dataset_file(name: str, filename: str, data_dir: str | os.PathLike | None = None,
                 verify: bool = True) -> Path:
    """Path of one file of data set ``name`` (``filename`` = its registered path or its
    tail), checked like :func:`dataset_path`; may end in .gz where that is allowed."""
    ds = _get_dataset(name)
    f = ds.file(filename)
    root = resolve_data_dir(data_dir)
    path = _local_path(root, f)
    if path is None:
        raise MissingDataError(_missing_message(ds, f, root, _origin(data_dir)))
    if verify:
        verify_file(path, f, ds.name)
    return path


def available(name: str, data_dir: str | os.PathLike | None = None) -> bool:
    """True when every file of data set ``name`` is present (no checksum test)."""
    try:
        dataset_path(name, data_dir, verify=False)
    except DataError:
        return False
    return True


# -- downloading --------------------------------------------------------------------

def download(name: str, data_dir: str | os.PathLike | None = None, overwrite: bool = False,
             timeout: float = 60.0) -> list[Path]:
    """Fetch the missing (or, with ``overwrite``, all) files of data set ``name`` into the
    data directory, verify each before moving it into place; returns the files written."""
    ds = _get_dataset(name)
    root = resolve_data_dir(data_dir)
    written = []
    for f in ds.files:
        target = root / f.path
        if _local_path(root, f) is not None and not overwrite:
            continue
        if f.url is None:
            raise MissingDataError(_missing_message(ds, f, root, _origin(data_dir)))
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(f.url, timeout=timeout) as response:
                shutil.copyfileobj(response, out, 1 << 20)
            verify_file(Path(tmp), f, ds.name)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        written.append(target)
    return written


# -- command line ---------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m cosmopipe.likelihoods.data_registry",
                                     description="List, check or download cosmopipe's public data sets.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="registered data sets")
    check = sub.add_parser("check", help="check presence and checksums")
    check.add_argument("names", nargs="*")
    check.add_argument("--data-dir")
    get = sub.add_parser("download", help="download the missing files of data sets")
    get.add_argument("names", nargs="+")
    get.add_argument("--data-dir")
    get.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    return run_command(args.command, getattr(args, "names", ()), getattr(args, "data_dir", None),
                       getattr(args, "overwrite", False))


def run_command(command: str, names: Sequence[str] = (), data_dir: str | os.PathLike | None = None,
                overwrite: bool = False) -> int:
    """``list``, ``check`` or ``download`` (of ``names``, default all), printing one line per
    data set; exit status 1 when any failed.  Shared by ``cosmopipe data`` and ``python -m``."""
    if command == "list":
        for ds in DATASETS.values():
            print(f"{ds.name:30s} {len(ds.files):3d} files  {ds.description}")
        return 0
    status = 0
    for name in (names or list(DATASETS)):
        try:
            if command == "check":
                dataset_path(name, data_dir)
                print(f"{name}: ok")
            else:
                for path in download(name, data_dir, overwrite=overwrite):
                    print(f"{name}: wrote {path}")
        except (DataError, OSError) as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
