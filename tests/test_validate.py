"""The argument checks every public function shares: each error names the parameter and what it accepts."""

from __future__ import annotations

import pytest

from pocket_parallel._validate import check_optional_bool, check_pair, check_url


def test_check_pair_accepts_ordered_pairs_in_range():
    assert check_pair("r", (1, 5), low=1, high=10, integer=True) == (1, 5)
    assert check_pair("r", [0.5, 2], low=0.0, high=3.0) == (0.5, 2.0)
    assert check_pair("r", (0.05, 5), low=0.0, high=10.0, low_open=True) == (0.05, 5.0)


@pytest.mark.parametrize(
    "value, kwargs, words",
    [((5, 5), {}, ["r must be a pair", "0 <= low < high <= 10"]),
     ((0, 2), {"low_open": True}, ["low above 0 and low < high <= 10"]),
     ((1, 2.5), {"integer": True}, ["integers"]),
     ((True, 2), {}, ["r must be"]),
     ((1, 11), {}, ["<= 10"]),
     ("wide", {}, ["'wide'"])],
)
def test_check_pair_names_what_it_accepts(value, kwargs, words):
    with pytest.raises(ValueError) as caught:
        check_pair("r", value, low=0, high=10, **kwargs)
    for word in words:
        assert word in str(caught.value)


def test_check_optional_bool():
    assert check_optional_bool("flag", None) is None and check_optional_bool("flag", True) is True
    for bad in (0, 1, "yes"):
        with pytest.raises(TypeError, match="flag must be True, False or None"):
            check_optional_bool("flag", bad)


def test_check_url_wants_http_or_https_and_names_the_parameter():
    assert check_url("base_url", "https://api.example.com/v1", "server.base_url") == "https://api.example.com/v1"
    for bad in ("127.0.0.1:8000", "ftp://x", None, 8000):
        with pytest.raises(ValueError, match=r"base_url must be an http:// or https:// URL such as server.base_url"):
            check_url("base_url", bad, "server.base_url")
