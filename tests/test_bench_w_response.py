"""The w0-response benchmark's error measure and its argument parsing."""
import argparse

import numpy as np
import pytest


def test_response_error_is_the_ratio_of_responses(load_benchmark):
    """A boost off by a k-independent factor at every w0 has an exact response; a response
    off by 2 % at k > 0.6 only shows in the k <= 1 range."""
    bench = load_benchmark("bench_w_response")
    k = np.linspace(0.05, 1.2, 24)
    rng = np.random.default_rng(1)
    ref = {w: 1.0 + rng.random((4, k.size)) for w in bench.W0S}
    scaled = {w: 1.3 * ref[w] for w in bench.W0S}
    for err in bench.response_errors(k, scaled, ref, 1.0).values():
        np.testing.assert_allclose(err, 0.0, atol=1e-12)
    off = dict(ref)
    off[-0.7] = ref[-0.7] * np.where(k > 0.6, 1.02, 1.0)
    low, high = bench.response_errors(k, off, ref, 0.5), bench.response_errors(k, off, ref, 1.0)
    np.testing.assert_allclose(low[-0.7], 0.0, atol=1e-12)
    np.testing.assert_allclose(high[-0.7], 2.0, rtol=1e-12)
    np.testing.assert_allclose(high[-1.3], 0.0, atol=1e-12)


def test_setup_parsing_names_the_format(load_benchmark):
    bench = load_benchmark("bench_w_response")
    assert bench._setup("128,320,384,20") == (128, 320.0, 384, 20)
    with pytest.raises(argparse.ArgumentTypeError, match="particles,box,mesh,steps"):
        bench._setup("128,320")
