"""The compiled counting kernels equal their numpy references on random blocks, masks, dtypes and shapes."""

from __future__ import annotations

import functools
import math
import os
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from histcalc import kernel, kernel_float, kernel_loading
from histcalc.errors import UsageError
from tests.support.kernels import kernel_env

DN_DTYPES = [np.uint8, np.int8, np.uint16, np.int16]
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


COMPILED = ["c", "numba"]  # the C kernels (built with the package) and numba's


def both(fn: Callable[[], Any], compiled_name: str) -> tuple[Any, Any]:
    """``fn()`` with the compiled kernels ``compiled_name``, then with the numpy references."""
    with kernel_env(compiled_name):
        compiled = fn()
    with kernel_env("numpy"):
        reference = fn()
    return compiled, reference


@st.composite
def blocks(draw: st.DrawFn, dtypes: list[Any]) -> dict[str, Any]:
    """A 2-D block (sometimes a non-contiguous window of a bigger one) with optional masks of its shape."""
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    shape = (draw(st.integers(0, 12)), draw(st.integers(0, 40)))
    if dtype.kind == "f":
        pool = st.sampled_from([0.0, 0.5, 1.0, -1.0, 2.5, 99.75, 100.0, 1e9, -math.inf, math.inf, math.nan])
        elements = st.one_of(pool, st.floats(-200, 200, width=dtype.itemsize * 8))
    else:
        info = np.iinfo(dtype)
        edges = [info.min, info.min + 1, 0, 1, 255, info.max - 1, info.max]
        pool = st.sampled_from([v for v in edges if info.min <= v <= info.max])
        elements = st.one_of(pool, st.integers(int(info.min), int(info.max)))
    strided = draw(st.booleans())
    big = (shape[0] * (2 if strided else 1) + 1, shape[1] + 3)
    full = draw(hnp.arrays(dtype, big, elements=elements))
    data = full[1::2, 2 : 2 + shape[1]] if strided else full[1:, : shape[1]]
    data = data[: shape[0]]

    def mask() -> Any:
        return draw(st.none() | hnp.arrays(np.bool_, data.shape))

    quality = draw(st.sampled_from(["none", "clear", "classes8", "classes16", "classes_int"]))
    q: kernel.Quality | None = None
    if quality == "clear":
        q = kernel.Quality.of_clear(draw(hnp.arrays(np.bool_, data.shape)))
    elif quality != "none":
        qdtype = {"classes8": np.uint8, "classes16": np.uint16, "classes_int": np.int32}[quality]
        classes = draw(hnp.arrays(qdtype, data.shape, elements=st.integers(0, 12)))
        q = kernel.Quality.of(classes, tuple(draw(st.sets(st.integers(-1, 12), max_size=5))))
    present = [v for v in data.ravel().tolist() if not (isinstance(v, float) and math.isnan(v))]
    nodata = draw(st.none() | st.sampled_from(present or [0]) | st.just(math.nan))
    if dtype.kind != "f" and nodata is not None and math.isnan(nodata):
        nodata = None
    valid = mask()
    if valid is not None and draw(st.booleans()):  # a GDAL mask band as read: 0 or 255
        valid = valid.astype(np.uint8) * 255
    return {"data": data, "inside": mask(), "valid": valid, "quality": q, "nodata": nodata}


def dn_counts(block: dict[str, Any]) -> tuple[Any, ...]:
    data = block["data"]
    lo = int(np.iinfo(data.dtype).min)
    counts = np.zeros((kernel.dn_ways(data.dtype), int(np.iinfo(data.dtype).max) - lo + 1), dtype=np.int64)
    nodata = None if block["nodata"] is None else int(block["nodata"])
    tallies = kernel.count_dn(data, counts, lo, nodata, block["inside"], block["valid"], block["quality"])
    return counts.sum(axis=0).tolist(), tallies


@pytest.mark.parametrize("compiled_name", COMPILED)
@SETTINGS
@given(blocks(DN_DTYPES))
def test_dn_kernel_equals_reference(compiled_name: str, block: dict[str, Any]) -> None:
    compiled, reference = both(lambda: dn_counts(block), compiled_name)
    assert compiled == reference


@pytest.mark.parametrize("compiled_name", COMPILED)
@pytest.mark.parametrize("dtype", DN_DTYPES)
@pytest.mark.parametrize("masks", ["inside", "valid", "valid 0/255", "inside and valid", "none"])
def test_dn_kernel_mask_paths_equal_reference(compiled_name: str, dtype: Any, masks: str) -> None:
    """Each mask combination has its own path in the kernels (branch-free for one mask alone): blocks of
    every length mod 4, runs of equal values, masks in runs and at random, one nodata DN."""
    rng = np.random.default_rng(zlib.crc32(f"{np.dtype(dtype).str} {masks}".encode()))
    info = np.iinfo(dtype)
    for width in (0, 1, 3, 4, 5, 7, 64, 1001):
        data = np.repeat(rng.integers(info.min, int(info.max) + 1, (3, width // 3 + 1), dtype=dtype), 3, axis=1)
        data = data[:, :width]
        runs = np.repeat(rng.random((3, width // 5 + 1)) < 0.6, 5, axis=1)[:, :width]
        scattered = rng.random(data.shape) < 0.7
        inside = runs if "inside" in masks else None
        valid: Any = scattered if masks.startswith("valid") or "and valid" in masks else None
        if masks == "valid 0/255":
            valid = valid.astype(np.uint8) * 255
        block = {
            "data": data,
            "inside": inside,
            "valid": valid,
            "quality": None,
            "nodata": int(data.flat[0]) if width else None,
        }
        compiled, reference = both(functools.partial(dn_counts, block), compiled_name)
        assert compiled == reference, (width, masks)


@SETTINGS
@given(blocks(DN_DTYPES))
def test_dn_reference_accounts_for_every_pixel(block: dict[str, Any]) -> None:
    """Brute force by hand: every pixel inside is counted, nodata by mask band, or masked."""
    with kernel_env("numpy"):
        counts, tallies = dn_counts(block)
    data, inside = block["data"], block["inside"]
    seen = data.size if inside is None else int(inside.sum())
    assert tallies.pixels == seen == sum(counts) + tallies.nodata + tallies.masked
    if block["quality"] is None:
        assert tallies.masked == 0
    if block["valid"] is None:
        assert tallies.nodata == 0
    expected = np.zeros(len(counts), dtype=np.int64)
    for value, keep in zip(data.ravel().tolist(), _kept_by_hand(block), strict=True):
        expected[value - int(np.iinfo(data.dtype).min)] += keep
    assert counts == expected.tolist()


def _kept_by_hand(block: dict[str, Any]) -> list[bool]:
    data, q = block["data"], block["quality"]
    inside = np.ones(data.shape, bool) if block["inside"] is None else block["inside"]
    valid = np.ones(data.shape, bool) if block["valid"] is None else block["valid"] != 0
    kept = []
    for idx in np.ndindex(data.shape):
        dropped = q is not None and bool(q.dropped[q.classes[idx]]) and data[idx] != block["nodata"]
        kept.append(bool(inside[idx] and valid[idx] and not dropped))
    return kept


@st.composite
def zonal_blocks(draw: st.DrawFn) -> dict[str, Any]:
    """A block with 1-3 label layers (overlapping zones) and a row map that scatters the labels' rows."""
    block = draw(blocks(DN_DTYPES))
    zones = draw(st.integers(1, 6))
    shape = block["data"].shape
    n_layers = draw(st.integers(1, 3))
    labels = draw(hnp.arrays(np.int32, (n_layers, shape[0], shape[1] + 1), elements=st.integers(0, zones)))
    rows = draw(st.permutations(list(range(1, zones + 1))))
    dtype = draw(st.sampled_from([np.int32, np.uint16]))  # as made, and as the label cache keeps them
    return {
        **block,
        "labels": labels[:, :, 1:].astype(dtype),
        "zones": zones,
        "rowmap": np.array([0, *rows], np.int32),
    }


@pytest.mark.parametrize("compiled_name", COMPILED)
@SETTINGS
@given(zonal_blocks())
def test_zonal_kernel_equals_reference(compiled_name: str, block: dict[str, Any]) -> None:
    data, layers, rowmap = block["data"], block["labels"], block["rowmap"]
    lo = int(np.iinfo(data.dtype).min)
    nodata = None if block["nodata"] is None else int(block["nodata"])
    size = int(np.iinfo(data.dtype).max) - lo + 1

    def run() -> tuple[Any, ...]:
        counts = np.zeros((block["zones"] + 1, size), dtype=np.int32)
        tallies = np.zeros((block["zones"] + 1, 2), dtype=np.int64)
        excess = np.zeros(size, dtype=np.int64)
        seen = kernel.count_zones(
            layers, rowmap, data, counts, tallies, excess, lo, nodata, block["inside"], block["valid"], block["quality"]
        )
        return counts.tolist(), tallies.tolist(), excess.tolist(), seen

    compiled, reference = both(run, compiled_name)
    assert compiled == reference
    counts, tallies, excess, seen = np.array(reference[0]), np.array(reference[1]), np.array(reference[2]), reference[3]
    # by hand: each layer's pixels inside the AOI land in their zone's row
    inside = np.ones(data.shape, bool) if block["inside"] is None else block["inside"]
    per_row = np.zeros(block["zones"] + 1, np.int64)
    for layer in layers:
        np.add.at(per_row, rowmap[layer[inside]], 1)
    per_row[0] = 0
    assert (counts.sum(axis=1) + tallies.sum(axis=1)).tolist() == per_row.tolist()
    assert seen.labelled == int(per_row.sum())
    # the zones' sum less the excess is the union: each pixel in any zone once, as count_dn counts it
    in_any = inside & (layers != 0).any(axis=0)
    union = np.zeros((1, size), np.int64)
    expected_union = kernel.count_dn_numpy(
        data, union, lo, lo - 1 if nodata is None else nodata, in_any, block["valid"], block["quality"]
    )
    assert (counts.sum(axis=0) - excess).tolist() == union[0].tolist()
    assert seen.labelled - seen.excess.pixels == expected_union.pixels
    assert tallies[:, 0].sum() - seen.excess.nodata == expected_union.nodata
    assert tallies[:, 1].sum() - seen.excess.masked == expected_union.masked


@pytest.mark.parametrize("compiled_name", COMPILED)
@pytest.mark.parametrize("n_layers", [2, 3, 6])
def test_zonal_kernel_without_masks_counts_every_layer_and_the_excess(compiled_name: str, n_layers: int) -> None:
    """The unmasked path, layer after layer (--all-touched makes 5-6 layers of parcels that touch): counts, the
    excess of pixels in several zones and the union equal the reference, on blocks of every length mod 8."""
    rng = np.random.default_rng(n_layers)
    for width in (1, 7, 8, 9, 61, 400):
        layers = rng.integers(0, 9, (n_layers, 3, width)) * (rng.random((n_layers, 3, width)) < 0.4)
        data = rng.integers(0, 256, (3, width)).astype(np.uint8)
        rowmap = np.array([0, *rng.permutation(np.arange(1, 9))], np.int32)

        labels = layers.astype(np.uint16)

        def run(labels: Any = labels, data: Any = data, rowmap: Any = rowmap) -> tuple[Any, ...]:
            counts, tallies = np.zeros((9, 256), np.uint16), np.zeros((9, 2), np.int64)
            excess = np.zeros(256, np.int64)
            seen = kernel.count_zones(labels, rowmap, data, counts, tallies, excess, 0, 255)
            return counts.tolist(), tallies.tolist(), excess.tolist(), seen

        compiled, reference = both(run, compiled_name)
        assert compiled == reference, width
        hits = (layers != 0).sum(axis=0)
        assert sum(reference[2]) == int(np.maximum(hits - 1, 0).sum()) == reference[3].excess.pixels


@pytest.mark.parametrize("name", [*COMPILED, "numpy"])
@pytest.mark.parametrize("dtype", [np.int32, np.uint16, np.uint8])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("masked", [False, True])
def test_zonal_label_out_of_range_is_an_error(name: str, dtype: type, layers: int, masked: bool) -> None:
    """Also where the kernel checks no label (16-bit labels, no mask: they index a padded row map)."""
    labels = np.array([[[0, 3]]] * layers, dtype=dtype)
    counts, tallies, excess = np.zeros((3, 256), np.int64), np.zeros((3, 2), np.int64), np.zeros(256, np.int64)
    rowmap = np.arange(3, dtype=np.int32)
    inside = np.ones((1, 2), bool) if masked else None
    with kernel_env(name), pytest.raises(ValueError, match="zone labels"):
        kernel.count_zones(labels, rowmap, np.zeros((1, 2), np.uint8), counts, tallies, excess, 0, inside=inside)


EDGE_SETS = [
    np.linspace(-1.0, 1.0, 11),
    np.linspace(0.0, 100.0, 7),
    np.linspace(-0.08, 0.94, 256),
    np.array([-5.0, -1.0, 0.0, 0.1, 7.0, 100.0]),
]


def float_run(block: dict[str, Any], edges: np.ndarray, scale: float, offset: float) -> tuple[Any, Any]:
    counts = np.zeros(edges.size - 1, dtype=np.int64)
    t = kernel_float.count_float(
        block["data"], edges, counts, scale, offset, block["nodata"], block["inside"], block["valid"], block["quality"]
    )
    return counts.tolist(), t


@pytest.mark.parametrize("compiled_name", COMPILED)
@SETTINGS
@given(
    blocks([np.float32, np.float64, np.int32, np.uint16]),
    st.sampled_from(range(len(EDGE_SETS))),
    st.sampled_from([(1.0, 0.0), (0.004, -0.08), (2.0, 1.0)]),
)
def test_float_kernel_equals_reference(
    compiled_name: str, block: dict[str, Any], which: int, transform: tuple[float, float]
) -> None:
    edges = EDGE_SETS[which]
    (c1, t1), (c2, t2) = both(lambda: float_run(block, edges, *transform), compiled_name)
    assert c1 == c2
    exact = ("pixels", "nodata", "masked", "below", "above", "n", "vmin", "vmax")
    assert [getattr(t1, f) for f in exact] == [getattr(t2, f) for f in exact]
    assert t1.mean == pytest.approx(t2.mean, rel=1e-9, abs=1e-9)
    assert t1.m2 == pytest.approx(t2.m2, rel=1e-7, abs=1e-6)


@pytest.mark.parametrize("name", [*COMPILED, "numpy"])
@pytest.mark.parametrize("edges", EDGE_SETS, ids=range(len(EDGE_SETS)))
def test_float_counts_equal_np_histogram_at_edge_values(name: str, edges: np.ndarray) -> None:
    """Values on every edge and one ulp either side land where np.histogram puts them."""
    values = np.concatenate([edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf)])
    values = np.concatenate([values, values.astype(np.float32).astype(np.float64)])
    expected, _ = np.histogram(values, bins=edges)
    counts = np.zeros(edges.size - 1, dtype=np.int64)
    with kernel_env(name):
        t = kernel_float.count_float(values.reshape(2, -1), edges, counts)
    assert counts.tolist() == expected.tolist()
    assert (t.below, t.above) == (int((values < edges[0]).sum()), int((values > edges[-1]).sum()))
    assert t.n == expected.sum() and t.vmin == edges[0] and t.vmax == edges[-1]


@pytest.mark.parametrize("compiled_name", COMPILED)
def test_float_kernel_moments_of_constant_values_are_exact(compiled_name: str) -> None:
    """Sums shifted by the first value: no cancellation far from zero (numpy's mean is off by an ulp here)."""
    values = np.full((3, 50), 0.1 + 1e6)
    with kernel_env(compiled_name):
        t = kernel_float.count_float(values, np.array([0.0, 2e6]), np.zeros(1, np.int64))
    assert (t.n, t.mean, t.m2) == (150, 0.1 + 1e6, 0.0)


def test_unknown_kernel_is_a_usage_error() -> None:
    with kernel_env("fortran"), pytest.raises(UsageError, match="HISTCALC_KERNEL"):
        kernel_loading.kernel_name()


def test_cache_dir_defaults_to_a_writable_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert kernel_loading.ensure_cache_dir() == str(tmp_path / "histcalc" / "numba")
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/somewhere/else")
    assert kernel_loading.ensure_cache_dir() == "/somewhere/else"


def test_cache_dir_falls_back_to_the_temp_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(not_a_dir))
    assert kernel_loading.ensure_cache_dir().startswith(tempfile.gettempdir())


def test_compiled_kernels_are_cached_in_the_cache_dir(tmp_path: Any) -> None:
    """A fresh process writes numba's cache under NUMBA_CACHE_DIR (the package folder may be read-only)."""
    code = "from histcalc import kernel_loading; kernel_loading.warm_up()"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "HISTCALC_KERNEL": "numba"}
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    assert list(tmp_path.rglob("*.nbi")) and list(tmp_path.rglob("*.nbc"))


@pytest.mark.parametrize("name", [*COMPILED, "numpy"])
def test_counts_too_narrow_or_masks_of_another_shape_are_errors(name: str) -> None:
    """The compiled kernels do not check bounds: the wrappers refuse what would write past the arrays."""
    with kernel_env(name):
        with pytest.raises(ValueError, match="cannot hold uint16"):
            kernel.count_dn(np.zeros((2, 2), np.uint16), np.zeros((1, 256), np.int64), 0)
        with pytest.raises(ValueError, match="cannot hold int8"):
            kernel.count_dn(np.zeros((2, 2), np.int8), np.zeros((1, 256), np.int64), 0)
        with pytest.raises(ValueError, match="one shape"):
            kernel.count_dn(np.zeros((2, 2), np.uint8), np.zeros((1, 256), np.int64), 0, None, np.ones((2, 3), bool))


@pytest.mark.parametrize("compiled_name", COMPILED)
@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), max_size=12), st.booleans())
def test_pairs_increase_equals_reference_and_sorted_unique(
    compiled_name: str, pairs: list[tuple[int, int]], tidy: bool
) -> None:
    """The check behind ZoneTable.is_compact: (zone, slot) cells sorted and unique, by both kernels."""
    if tidy:
        pairs = sorted(set(pairs))
    major = np.array([p[0] for p in pairs], np.int64)
    minor = np.array([p[1] for p in pairs], np.int64)
    compiled, reference = both(lambda: kernel.pairs_increase(major, minor), compiled_name)
    assert compiled == reference == (pairs == sorted(set(pairs)))


def test_the_c_kernels_are_built_into_this_installation() -> None:
    """`make test` installs a C compiler first, so the kernels these tests compare are the ones users get."""
    with kernel_env("auto"):
        assert kernel_loading.compiled_kernels().__name__ == "histcalc._native"
        assert kernel_loading.use_compiled()


def test_a_library_built_from_other_sources_is_refused(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """An editable install whose library predates its bindings is not called with the wrong signatures: loading
    raises OSError, which kernel_loading turns into numba or numpy counting with a warning."""
    from histcalc import _native

    stale = "int histcalc_kernels_abi(void) { return 0; }\n"  # an older interface
    before = "int unrelated(void) { return 1; }\n"  # from before the interface had a number
    for n, body in enumerate((stale, before)):
        source, library = tmp_path / "old.c", tmp_path / f"old-{n}.so"
        source.write_text(body)
        subprocess.run(["cc", "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
        monkeypatch.setattr(_native, "LIBRARY", library)
        with pytest.raises(OSError, match=f"interface 0, these bindings need {_native.ABI}"):
            _native._load()


def test_the_c_bindings_refuse_what_would_read_or_write_past_an_array() -> None:
    """The C code checks no bounds: its ctypes bindings check the indices that come from Python."""
    from histcalc import _native

    column = np.arange(10, dtype=np.int64)
    one = np.array([0], np.int64)
    with pytest.raises(ValueError, match="outside its column"):
        _native.gather_runs((column,), np.array([8], np.int64), np.array([5], np.int64), one, (np.empty(5, np.int64),))
    with pytest.raises(ValueError, match="does not exist"):
        _native.gather_runs((column,), one, one, np.array([1], np.int64), (np.empty(1, np.int64),))
    counts, tallies = np.zeros((3, 256), np.int32), np.zeros((2, 2), np.int64)
    cells = [np.empty(600, np.int64) for _ in range(3)]
    with pytest.raises(ValueError, match="rows must lie in counts"):
        _native.zone_cells(
            counts, tallies, np.array([2], np.int64), one, np.arange(256, dtype=np.int64), np.zeros(256), 254, True,
            *cells, 0, np.empty((4, 5), np.int64), np.empty((4, 4)), 0, np.zeros(258, np.int64),
        )  # fmt: skip
    data, labels = np.zeros(4, np.uint8), np.ones((1, 4), np.uint16)
    with pytest.raises(ValueError, match="row map points past"):
        _native.count_zones(
            labels, np.array([0, 5], np.int32), data, counts, np.zeros((3, 2), np.int64), np.zeros(256, np.int64),
            0, -1, NO, NO, NO.view(np.uint8), NO, False, False, False, False,
        )  # fmt: skip
    with pytest.raises(TypeError, match="writeable C-contiguous int64"):
        _native.count_dn(data, np.zeros((4, 256), np.int32), 0, -1, NO, NO, NO.view(np.uint8), NO, False, False, False)
    dn_counts = np.zeros((4, 256), np.int64)
    with pytest.raises(ValueError, match="a value for every pixel"):
        _native.count_dn(data, dn_counts, 0, -1, np.ones(3, bool), NO, NO.view(np.uint8), NO, True, False, False)
    classes, two = np.array([0, 1, 7, 1], np.uint8), np.array([False, True])  # class 7 has no entry
    with pytest.raises(ValueError, match="quality classes up to 7, but only 2"):
        _native.count_dn(data, dn_counts, 0, -1, NO, NO, classes, two, False, False, True)


NO = np.zeros(0, np.bool_)
