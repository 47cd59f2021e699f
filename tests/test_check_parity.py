"""Class 10 of issue 9 (and the contrast margins of class 7): ``check`` runs exactly
the validation that ``run``, ``compare``, ``sensitivity`` and ``report`` run before
sampling.

Every spec below is invalid. ``check`` must refuse it, and each fitting command
must refuse it with the very same line, naming the spec file and the key, before
anything is sampled or written.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from bayes_poem import DataError, SpecError, load_spec
from bayes_poem.contrasts import Contrast
from tests.helpers import run_cli

CSV = """study,subgroup,outcome,events,total,quality,year
A,x,cs,8,10,good,2015
A,y,cs,4,6,good,2015
B,x,cs,9,15,fair,2016
C,y,cs,2,7,good,2017
D,z,cs,7,10,fair,2018
D,y,cs,5,9,fair,2018
A,x,ae,1,10,excellent,2015
"""
BASE = '[data]\npath = "d.csv"\noutcome = "cs"\n'
SAMPLER = "[sampler]\ndraws = 200\ntune = 200\nchains = 2\n"
NO_GRID = ("[sensitivity]\ntau_priors = []\nturner = []\nmu_priors = []\n"
           "sigma_subgroup_priors = []\nsubgroup_effects = []\nlikelihoods = []\n"
           "leave_one_out = false\npsens = false\n")


def _contrast(body: str) -> str:
    return f"[[contrasts]]\n{body}\n"


INVALID = {  # name -> (spec text after [data], key or text the message must name)
    "contrast a == b": (_contrast('a = "x"\nb = "x"'), "contrasts[1]: a and b must be two "
                                                       "different subgroups"),
    "contrast b == a, second entry": (_contrast('a = "x"\nb = "y"') + _contrast('a = "z"\n'
                                                                                'b = "z"'),
                                      "contrasts[2]: a and b"),
    "margin nan": (_contrast('a = "x"\nb = "y"\nmargin = nan'), "contrasts[1].margin"),
    "margin inf": (_contrast('a = "x"\nb = "y"\nmargin = inf'), "contrasts[1].margin"),
    "margin -inf": (_contrast('a = "x"\nb = "y"\nmargin = -inf'), "contrasts[1].margin"),
    "ratio margin nan": (_contrast('a = "x"\nb = "y"\nratio_margin = nan'),
                         "contrasts[1].ratio_margin: must be a finite number > 0"),
    "ratio margin inf": (_contrast('a = "x"\nb = "y"\nratio_margin = inf'),
                         "contrasts[1].ratio_margin"),
    "ratio margin 0": (_contrast('a = "x"\nb = "y"\nratio_margin = 0'),
                       "contrasts[1].ratio_margin"),
    "odds ratio margin -1": (_contrast('a = "x"\nb = "y"\nodds_ratio_margin = -1.0'),
                             "contrasts[1].odds_ratio_margin"),
    "odds ratio margin nan": (_contrast('a = "x"\nb = "y"\nodds_ratio_margin = nan'),
                              "contrasts[1].odds_ratio_margin"),
    "margin huge integer": (_contrast('a = "x"\nb = "y"\nmargin = ' + "9" * 400),
                            "contrasts[1].margin"),
    "contrast unknown a": (_contrast('a = "w"\nb = "y"'), "contrasts[1].a: subgroup 'w'"),
    "contrast unknown b": (_contrast('a = "x"\nb = "X"'), "contrasts[1].b: subgroup 'X'"),
    "contrast repeated": (_contrast('a = "x"\nb = "y"') + _contrast('a = "x"\nb = "y"\n'
                                                                    "margin = 0.1"),
                          "contrasts[2] repeats contrasts[1]"),
    "contrasts without subgroup effects": ('[model]\nsubgroup_effects = "none"\n'
                                           + _contrast('a = "x"\nb = "y"'), "contrasts need"),
    "weights of an unknown subgroup": ("[summary]\nweights = { x = 1.0, q = 2.0 }\n",
                                       "summary.weights: unknown subgroup(s) q"),
    "subset on a missing column": (
        NO_GRID + 'subsets = [{ column = "quality", values = ["good"] }, '
        '{ column = "qualty", values = ["good"] }]\n',
        "sensitivity.subsets[2]: no column 'qualty'"),
    "subset matching no row": (
        NO_GRID + 'subsets = [{ name = "best", column = "quality", values = ["perfect"] }]\n',
        "sensitivity.subsets[1]: no row has quality in perfect"),
    "subset matching rows of another outcome only": (
        NO_GRID + 'subsets = [{ column = "quality", values = ["excellent"] }]\n',
        "sensitivity.subsets[1]: no row has quality in excellent"),
    "subset on a number written as a float": (
        NO_GRID + 'subsets = [{ column = "year", values = [2015.0] }]\n',
        "sensitivity.subsets[1]: no row has year in 2015.0"),
    "subset with no values": (NO_GRID + 'subsets = [{ column = "quality", values = [] }]\n',
                              "sensitivity.subsets[1].values"),
    "subset with a boolean value": (
        NO_GRID + 'subsets = [{ column = "quality", values = [true] }]\n',
        "sensitivity.subsets[1].values"),
    "subsets not an array": (NO_GRID + 'subsets = "quality"\n',
                             "sensitivity.subsets must be an array"),
    "default grid, subset named main": (
        '[sensitivity]\nsubsets = [{ name = "main", column = "quality", values = ["good"] }]\n',
        "sensitivity.subsets[1].name: 'main' is reserved"),
    "default grid, subset named like a default tau prior": (
        '[sensitivity]\nsubsets = [{ name = "tau HalfNormal(0.5)", column = "quality", '
        'values = ["good"] }]\n',
        "sensitivity.tau_priors[1] and sensitivity.subsets[1] both name a variant"),
    "data.subgroups unknown": ("", "data.subgroups: "),  # see DATA_KEYS
    "data.subgroups repeated": ("", "data.subgroups: "),
}
DATA_KEYS = {"data.subgroups unknown": 'subgroups = ["x", "w"]\n',
             "data.subgroups repeated": 'subgroups = ["x", "y", "x"]\n'}


def _write(tmp_path: Path, name: str) -> Path:
    (tmp_path / "d.csv").write_text(CSV)
    body, _ = INVALID[name]
    data = BASE + DATA_KEYS.get(name, "")
    spec = tmp_path / "bad.toml"
    spec.write_text(data + SAMPLER + body)
    return spec


@pytest.fixture
def no_fit(monkeypatch):
    from bayes_poem import sampling

    def fail(*args, **kwargs):
        raise AssertionError("sampled although the spec is invalid")

    monkeypatch.setattr(sampling, "fit", fail)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_class10_check_refuses_what_every_command_refuses(tmp_path, capsys, no_fit, name):
    spec = _write(tmp_path, name)
    code, out, check_err = run_cli(["check", spec], capsys)
    assert code == 2 and out == "", check_err
    assert check_err.count("\n") == 1 and "Traceback" not in check_err
    assert check_err.startswith(f"bayes-poem: error: {spec}: ")
    assert INVALID[name][1] in check_err, check_err
    for command in ("run", "compare", "sensitivity", "report"):
        out_dir = tmp_path / f"out_{command}"
        code, out, err = run_cli([command, spec, "--out", out_dir, "--quiet"], capsys)
        assert (code, out, err) == (2, "", check_err), command
        assert not out_dir.exists()


# Checks of the labels a spec names against its data: ``AnalysisSpec.model_spec()`` itself
# (the Python API: ``fit(load_spec(path).model_spec())``) raises them.
LABELS = ("contrast unknown a", "contrast unknown b", "contrast repeated",
          "contrasts without subgroup effects", "weights of an unknown subgroup")


def _api_error(spec: Path, method: str) -> str:
    """The one-line message ``load_spec(spec).<method>()`` raises (a SpecError/DataError)."""
    with pytest.raises((SpecError, DataError)) as caught:
        getattr(load_spec(spec), method)()
    return str(caught.value)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_api_refuses_every_invalid_spec_with_the_cli_line(tmp_path, capsys, no_fit, name):
    spec = _write(tmp_path, name)
    code, _, check_err = run_cli(["check", spec], capsys)
    assert code == 2
    line = check_err.removeprefix("bayes-poem: error: ").removesuffix("\n")
    assert _api_error(spec, "validated_spec") == line
    if name in LABELS:
        assert _api_error(spec, "model_spec") == line


def test_api_summary_at_of_an_unknown_moderator_is_the_cli_line(tmp_path, capsys, no_fit):
    (tmp_path / "d.csv").write_text(CSV)
    spec = tmp_path / "at.toml"
    spec.write_text(BASE + '[model]\nmoderators = ["year"]\n' + SAMPLER
                    + "[summary]\nat = { yaer = 2016 }\n")
    code, _, err = run_cli(["check", spec], capsys)
    assert code == 2 and "summary.at" in err, err
    assert _api_error(spec, "model_spec") == err.removeprefix("bayes-poem: error: ").strip()


def test_class10_valid_spec_passes_check_with_its_grid(tmp_path, capsys, no_fit):
    (tmp_path / "d.csv").write_text(CSV)
    spec = tmp_path / "good.toml"
    spec.write_text(BASE + SAMPLER + _contrast('a = "x"\nb = "y"\nmargin = 0.1')
                    + _contrast('a = "x"\nb = "y"\nquantity = "p_new"')
                    + '[sensitivity]\nsubsets = [{ column = "year", values = [2015, 2016] }]\n')
    code, out, err = run_cli(["check", spec], capsys)
    assert code == 0, err
    assert out.startswith(f"OK: {spec}")


# ---------------------------------------------------------------------- the Python API
@pytest.mark.parametrize("kwargs, key", [
    ({"a": "x", "b": "x"}, "a and b must be two different subgroups"),
    ({"a": "x", "b": "y", "margin": math.nan}, "Contrast.margin: must be a finite number"),
    ({"a": "x", "b": "y", "margin": np.float64("nan")}, "Contrast.margin"),
    ({"a": "x", "b": "y", "margin": math.inf}, "Contrast.margin"),
    ({"a": "x", "b": "y", "margin": -math.inf}, "Contrast.margin"),
    ({"a": "x", "b": "y", "margin": 10 ** 400}, "Contrast.margin"),
    ({"a": "x", "b": "y", "margin": "0.1"}, "Contrast.margin: must be a number"),
    ({"a": "x", "b": "y", "margin": True}, "Contrast.margin: must be a number"),
    ({"a": "x", "b": "y", "ratio_margin": math.nan}, "Contrast.ratio_margin"),
    ({"a": "x", "b": "y", "ratio_margin": 0.0}, "Contrast.ratio_margin: must be a finite "
                                                "number > 0"),
    ({"a": "x", "b": "y", "ratio_margin": math.inf}, "Contrast.ratio_margin"),
    ({"a": "x", "b": "y", "odds_ratio_margin": -2}, "Contrast.odds_ratio_margin"),
    ({"a": "x", "b": "y", "odds_ratio_margin": math.nan}, "Contrast.odds_ratio_margin"),
    ({"a": "x", "b": "y", "quantity": "p_study"}, "Contrast.quantity"),
    ({"a": "", "b": "y"}, "Contrast.a"),
    ({"a": "x", "b": None}, "Contrast.b"),
])
def test_class7_contrast_rejects_bad_fields_in_the_constructor(kwargs, key):
    anchor = "^" if key.startswith("Contrast") else ""
    with pytest.raises(SpecError, match=anchor + re.escape(key)):
        Contrast(**kwargs)


def test_class7_contrast_margins_are_plain_floats():
    contrast = Contrast("x", "y", margin=np.int64(1), ratio_margin=2, odds_ratio_margin=0.5)
    assert (contrast.margin, contrast.ratio_margin) == (1.0, 2.0)
    assert all(type(v) is float for v in (contrast.margin, contrast.ratio_margin,
                                          contrast.odds_ratio_margin))
