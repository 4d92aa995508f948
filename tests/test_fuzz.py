"""Property tests: no argument list and no catalog document makes histcalc print a traceback."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from histcalc import Query, find_scenes
from histcalc.cli import main
from histcalc.errors import HistcalcError
from tests.conftest import write_raster

FLAGS = [
    "--start-date",
    "--end-date",
    "--bbox",
    "--bins",
    "--range",
    "--band",
    "--scale",
    "--offset",
    "--nodata",
    "--percentiles",
    "--workers",
    "--allow-failures",
    "--group-by",
    "--href-mode",
    "--on-error",
    "--asset",
    "--mask-values",
]
junk = st.one_of(
    st.text(max_size=12),
    st.from_regex(r"-?\d{1,4}(\.\d{1,3})?(,-?\d{1,4}(\.\d{1,3})?){0,4}", fullmatch=True),
    st.sampled_from(
        [
            "2024-05-01",
            "2024-02-30",
            "4.91,51.16,5.24,51.27",
            "0,1",
            "1,0",
            "nan,1",
            "inf",
            "-1",
            "0",
            "50%",
            "month",
            "local",
            "fail",
        ]
    ),
)
argv_st = st.lists(st.tuples(st.sampled_from(FLAGS), junk), max_size=4)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    write_raster(root / "t_20240501.tif", np.arange(16, dtype=np.uint8).reshape(4, 4), nodata=255, block=None)
    return root


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pairs=argv_st)
def test_cli_never_shows_a_traceback(
    pairs: list[tuple[str, str]], tiny_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--catalog", str(tiny_dir), "--engine", "local", "--workers", "1", "-q"]
    for flag, value in pairs:
        argv.append(f"{flag}={value}")
    code = main(argv)
    _, err = capsys.readouterr()
    assert isinstance(code, int) and code != 70, err  # 70: an internal error, i.e. a bug
    assert "Traceback" not in err and err.count("\n") <= 1


json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
stac_like = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["Feature", "Catalog", "Collection", "FeatureCollection", "x"]),
        "stac_version": st.sampled_from(["1.0.0", "0.9.0", "x"]),
    },
    optional={
        "id": st.text(max_size=5),
        "assets": json_value,
        "properties": json_value,
        "links": json_value,
        "features": json_value,
        "bbox": json_value,
        "geometry": json_value,
        "extent": json_value,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=st.one_of(stac_like, json_value))
def test_catalog_reader_only_raises_our_errors(doc: object, tmp_path: Path) -> None:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(doc))
    with contextlib.suppress(HistcalcError):
        find_scenes(Query(catalog=str(path)))
