"""Data registry: locating the data directory, checksums, clear errors, downloads (offline)."""
import hashlib
import io
import os
import re
import shutil
from pathlib import Path

import pytest

from cosmopipe.likelihoods import data_registry as reg


def _shared_data() -> Path | None:
    """$COSMOPIPE_DATA, else <repo>/../shared/data; None when neither exists."""
    env = os.environ.get(reg.ENV_VAR)
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return path if path.is_dir() else None


SHARED = _shared_data()
needs_data = pytest.mark.skipif(SHARED is None, reason="public data not found: set COSMOPIPE_DATA "
                                "or provide ../shared/data (see likelihoods/data_registry.py)")

# Files the reference collection could not include (README: "what is missing and why").
KNOWN_MISSING = {
    "sn/pantheon/sys_full_long.txt",
    "sn/pantheon_plus/Pantheon+SH0ES_STAT+SYS.cov",
    "cmb/act_dr4_lite/coadd_bpwf_15mJy_191127_lmin2.npz",
    "cmb/act_dr4_lite/coadd_bpwf_100mJy_191127_lmin2.npz",
    "des_y1/DES_1YR_final_cov.dat",
}


def _copy_dataset(name: str, dest: Path) -> None:
    for f in reg.DATASETS[name].files:
        (dest / f.path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SHARED / f.path, dest / f.path)


# -- the registry itself --------------------------------------------------------------

def test_registry_entries_are_well_formed():
    paths = [f.path for ds in reg.DATASETS.values() for f in ds.files]
    assert len(paths) == len(set(paths)), "a file is registered twice"
    for ds in reg.DATASETS.values():
        for f in ds.files:
            assert f.path.startswith(ds.directory + "/")
            assert f.checksum in ("verified", "unverified", "none")
            if f.checksum == "none":
                assert f.sha256 is None and re.fullmatch(r"[0-9a-f]{12}", f.git_blob), f.path
            else:
                assert re.fullmatch(r"[0-9a-f]{64}", f.sha256), f.path
            if f.url is None:
                assert f.note, f"{f.path}: no URL and no note on how to obtain it"
            else:
                assert re.fullmatch(r"https://raw\.githubusercontent\.com/[\w.-]+/[\w.-]+/[0-9a-f]{40}/\S+", f.url), f.url
    # The incomplete data sets are registered so that users can add them later.
    assert KNOWN_MISSING <= set(paths)


@needs_data
def test_registry_matches_every_shared_file_byte_for_byte():
    # Every file of the collection is registered, and every verified sha256 and size
    # matches the file (the checksums are those listed in the data README).
    on_disk = {p.relative_to(SHARED).as_posix() for p in SHARED.rglob("*") if p.is_file()}
    registered = {f.path: f for ds in reg.DATASETS.values() for f in ds.files}
    assert on_disk - {"README.md"} <= set(registered)
    for path in sorted(on_disk & set(registered)):
        f = registered[path]
        content = (SHARED / path).read_bytes()
        assert len(content) == f.size, path
        assert hashlib.sha256(content).hexdigest() == f.sha256, path
    assert {p for p in registered if p not in on_disk} <= KNOWN_MISSING


@needs_data
@pytest.mark.parametrize("name", ["bao_sixdf_2011", "bao_sdss_mgs", "bao_boss_dr12", "bao_desi_dr1", "bao_desi_dr2",
                                  "sn_pantheon_binned", "sn_pantheon", "sn_pantheon_plus", "planck_2018_plik_lite",
                                  "planck_2018_lowl_tt_2bins", "planck_sroll2_lowE", "planck_2018_lensing"])
def test_complete_datasets_pass_their_checks(name):
    folder = reg.dataset_path(name, SHARED)
    assert folder == SHARED.resolve() / reg.DATASETS[name].directory


# -- data directory ---------------------------------------------------------------------

def test_explicit_data_dir_beats_environment(tmp_path, monkeypatch):
    other = tmp_path / "env"
    other.mkdir()
    monkeypatch.setenv(reg.ENV_VAR, str(other))
    assert reg.resolve_data_dir(tmp_path) == tmp_path.resolve()
    assert reg.resolve_data_dir(None) == other.resolve()


def test_no_data_dir_says_how_to_set_one(monkeypatch):
    monkeypatch.delenv(reg.ENV_VAR, raising=False)
    with pytest.raises(reg.DataError, match=r"data_dir.*COSMOPIPE_DATA"):
        reg.dataset_path("bao_boss_dr12")


def test_nonexistent_data_dir(tmp_path):
    with pytest.raises(reg.DataError, match="does not exist"):
        reg.resolve_data_dir(tmp_path / "nowhere")


def test_unknown_dataset_lists_known_ones(tmp_path):
    with pytest.raises(reg.DataError, match="unknown data set 'planck_2015'.*bao_boss_dr12"):
        reg.dataset_path("planck_2015", tmp_path)


# -- missing and corrupt files --------------------------------------------------------------

def test_missing_file_names_dataset_file_location_and_url(tmp_path, monkeypatch):
    monkeypatch.setenv(reg.ENV_VAR, str(tmp_path))
    with pytest.raises(reg.MissingDataError) as err:
        reg.dataset_path("planck_2018_plik_lite")
    text = str(err.value)
    assert "'planck_2018_plik_lite'" in text
    assert "cmb/planck2018_plik_lite/blmax.dat" in text
    assert str(tmp_path.resolve()) in text and "COSMOPIPE_DATA" in text
    assert "https://raw.githubusercontent.com/heatherprince/planck-lite-py/" in text
    assert "python -m cosmopipe.likelihoods.data_registry download planck_2018_plik_lite" in text


def test_files_absent_from_the_collection_point_to_their_source(tmp_path):
    with pytest.raises(reg.MissingDataError, match=r"sys_full_long\.txt.*dscolnic/Pantheon/[0-9a-f]{40}/"):
        reg.dataset_path("sn_pantheon_sys", tmp_path)
    with pytest.raises(reg.MissingDataError, match=r"Pantheon\+SH0ES_STAT\+SYS\.cov.*\.cov\.gz"):
        reg.dataset_path("sn_pantheon_plus_cov", tmp_path)


@needs_data
def test_corrupt_file_is_a_checksum_error(tmp_path):
    _copy_dataset("bao_boss_dr12", tmp_path)
    target = tmp_path / "bao" / "sdss_DR12Consensus_bao.dat"
    target.write_text(target.read_text().replace("1512.39", "1512.40"))
    with pytest.raises(reg.ChecksumError, match=r"sdss_DR12Consensus_bao\.dat.*sha256.*expected fc43f1cd.*"
                       r"raw\.githubusercontent\.com/CobayaSampler/bao_data/"):
        reg.dataset_path("bao_boss_dr12", tmp_path)
    # verify=False is the escape hatch; a truncated file is still caught by default.
    assert reg.dataset_path("bao_boss_dr12", tmp_path, verify=False).is_dir()
    (tmp_path / "bao" / "BAO_consensus_covtot_dM_Hz.txt").write_text("624.707 23.729\n")
    target.write_text((SHARED / "bao" / "sdss_DR12Consensus_bao.dat").read_text())
    with pytest.raises(reg.ChecksumError, match="BAO_consensus_covtot_dM_Hz.txt"):
        reg.dataset_path("bao_boss_dr12", tmp_path)


def test_git_blob_prefix_guards_files_without_sha256(tmp_path):
    target = tmp_path / "sn" / "pantheon" / "sys_full_long.txt"
    target.parent.mkdir(parents=True)
    target.write_text("1048\n0.0\n")
    with pytest.raises(reg.ChecksumError, match=r"git blob id .* expected 94c6b1a3fdcd"):
        reg.dataset_path("sn_pantheon_sys", tmp_path)


def test_digests_compute_git_blob_ids(tmp_path):
    # `git hash-object` of a file holding "hello\n" is ce013625030b...; a gzipped copy
    # is hashed by its content.
    import gzip

    plain, packed = tmp_path / "a.txt", tmp_path / "a.txt.gz"
    plain.write_bytes(b"hello\n")
    with gzip.open(packed, "wb") as fh:
        fh.write(b"hello\n")
    for path in (plain, packed):
        size, sha, blob = reg._digests(path)
        assert (size, blob) == (6, "ce013625030ba8dba906f756967f9e9ca394464a")
        assert sha == hashlib.sha256(b"hello\n").hexdigest()


@needs_data
def test_unverified_checksum_mismatch_only_warns(tmp_path):
    for f in reg.DATASETS["des_y1"].files:
        dest = tmp_path / f.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        if f.checksum == "unverified":
            dest.write_text("not the DES covariance\n")
        else:
            shutil.copyfile(SHARED / f.path, dest)
    with pytest.warns(UserWarning, match="unverified third-party"):
        reg.dataset_path("des_y1", tmp_path)


def test_gzipped_file_is_accepted_where_allowed(tmp_path):
    import gzip

    f = reg.DATASETS["sn_pantheon_plus_cov"].files[0]
    target = tmp_path / (f.path + ".gz")
    target.parent.mkdir(parents=True)
    with gzip.open(target, "wb") as fh:
        fh.write(b"2\n1\n0\n0\n1\n")
    # Found (the content is checked against the blob id of the uncompressed text).
    with pytest.raises(reg.ChecksumError, match=r"\.cov\.gz.*git blob"):
        reg.dataset_file("sn_pantheon_plus_cov", "Pantheon+SH0ES_STAT+SYS.cov", tmp_path)
    assert reg.dataset_file("sn_pantheon_plus_cov", "Pantheon+SH0ES_STAT+SYS.cov", tmp_path,
                            verify=False) == target.resolve()


# -- downloading (no network: urlopen is replaced by a local server of the shared files) -----

class _FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@needs_data
def test_download_fetches_verifies_and_places_files(tmp_path, monkeypatch):
    requested = []
    by_url = {f.url: f.path for f in reg.DATASETS["bao_desi_dr2"].files}

    def fake_urlopen(url, timeout):
        requested.append(url)
        return _FakeResponse((SHARED / by_url[url]).read_bytes())

    monkeypatch.setattr(reg.urllib.request, "urlopen", fake_urlopen)
    written = reg.download("bao_desi_dr2", tmp_path)
    assert len(written) == len(by_url) == len(requested)
    assert reg.dataset_path("bao_desi_dr2", tmp_path).is_dir()
    # Present files are not fetched again.
    assert reg.download("bao_desi_dr2", tmp_path) == [] and len(requested) == len(by_url)


@needs_data
def test_download_rejects_corrupt_payload_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(reg.urllib.request, "urlopen", lambda url, timeout: _FakeResponse(b"<html>404</html>"))
    with pytest.raises(reg.ChecksumError, match="sdss_MGS_prob.txt"):
        reg.download("bao_sdss_mgs", tmp_path)
    assert list(tmp_path.rglob("*.txt*")) == []


def test_download_of_file_without_url_explains(tmp_path):
    with pytest.raises(reg.MissingDataError, match="cannot be downloaded automatically.*cobaya"):
        reg.download("bao_sixdf_2011", tmp_path)


@needs_data
def test_command_line_check(tmp_path, capsys):
    assert reg.main(["check", "bao_boss_dr12", "planck_sroll2_lowE", "--data-dir", str(SHARED)]) == 0
    assert "bao_boss_dr12: ok" in capsys.readouterr().out
    assert reg.main(["check", "bao_boss_dr12", "--data-dir", str(tmp_path)]) == 1
    assert "not found" in capsys.readouterr().err
