"""Scene selection from static STAC catalogs and directories: dates, bbox, assets, hrefs."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from histcalc import Query, find_scenes
from histcalc.demo import generate
from histcalc.errors import CatalogError, InvalidDate, NoScenesFound
from tests.conftest import write_raster


@pytest.fixture(scope="module")
def demo_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("demo"), size=64)


def _q(catalog: Path | str, **kw: object) -> Query:
    return Query(catalog=str(catalog), **kw)  # type: ignore[arg-type]


def test_demo_catalog_lists_every_date_with_local_hrefs(demo_catalog: Path) -> None:
    scenes = find_scenes(_q(demo_catalog))
    assert [s.day for s in scenes] == [date(2024, 5, 1 + 5 * i) for i in range(7)] + [
        date(2024, 6, 5),
        date(2024, 6, 10),
    ]
    assert all(Path(s.href).is_absolute() and Path(s.href).exists() for s in scenes)
    assert all("/data/MTDA/TERRASCOPE_Sentinel2/NDVI_V2/2024/" in s.href for s in scenes)
    first = scenes[0]
    assert (first.scale, first.offset, first.nodata, first.dtype) == (0.004, -0.08, 255.0, "uint8")
    assert first.href.endswith("S2A_20240501T104621_31UFS_NDVI_10M_V200.tif")
    assert "SCENECLASSIFICATION" in first.extra_hrefs


def test_dates_are_inclusive_whole_days(demo_catalog: Path) -> None:
    scenes = find_scenes(_q(demo_catalog, start=date(2024, 5, 6), end=date(2024, 5, 16)))
    assert [s.day for s in scenes] == [date(2024, 5, 6), date(2024, 5, 11), date(2024, 5, 16)]


def test_bbox_and_collection_filter(demo_catalog: Path) -> None:
    assert len(find_scenes(_q(demo_catalog, bbox=(4.91, 51.16, 5.24, 51.27)))) == 9
    with pytest.raises(NoScenesFound, match="bbox"):
        find_scenes(_q(demo_catalog, bbox=(10.0, 40.0, 11.0, 41.0)))
    with pytest.raises(NoScenesFound):
        find_scenes(_q(demo_catalog, collection="another-collection"))


def test_end_before_start_is_refused() -> None:
    with pytest.raises(InvalidDate, match="before"):
        Query(start=date(2024, 6, 1), end=date(2024, 5, 1))


def test_remote_href_mode_keeps_the_main_href(demo_catalog: Path, tmp_path: Path) -> None:
    item_path = next((demo_catalog.parent / "items").glob("*/*.json"))
    item = json.loads(item_path.read_text())
    main_href = item["assets"]["NDVI"]["alternate"]["local"]["href"]
    item["assets"]["NDVI"]["href"] = main_href
    item["assets"]["NDVI"]["alternate"]["local"]["href"] = "/no/such/mount/x.tif"
    copy = tmp_path / "item.json"
    copy.write_text(json.dumps({**item, "links": []}))
    auto = find_scenes(_q(copy, href_mode="auto"))[0]
    assert auto.href == main_href  # mount missing: fall back to the main href
    assert find_scenes(_q(copy, href_mode="local"))[0].href == "/no/such/mount/x.tif"


def test_older_mep_alternate_key_is_understood(demo_catalog: Path, tmp_path: Path) -> None:
    item_path = next((demo_catalog.parent / "items").glob("*/*.json"))
    item = json.loads(item_path.read_text())
    real = item["assets"]["NDVI"]["alternate"].pop("local")["href"]
    item["assets"]["NDVI"]["alternate"]["MEP"] = {"href": real}
    item["assets"]["NDVI"]["href"] = "https://example.invalid/x.tif"
    copy = tmp_path / "item.json"
    copy.write_text(json.dumps({**item, "links": []}))
    assert find_scenes(_q(copy))[0].href == real


def test_directory_of_geotiffs_dates_from_names(tmp_path: Path) -> None:
    data = np.zeros((8, 8), np.uint8)
    for name in ("S2A_20240503T104621_31UFS_NDVI_10M_V200.tif", "x_20240701_y.tif", "nodate.tif"):
        write_raster(tmp_path / name, data, block=None)
    (tmp_path / "notes.txt").write_text("not a raster")
    scenes = find_scenes(_q(tmp_path, start=date(2024, 5, 1), end=date(2024, 6, 10)))
    assert [s.id for s in scenes] == ["S2A_20240503T104621_31UFS_NDVI_10M_V200"]
    assert len(find_scenes(_q(tmp_path))) == 3  # no date filter: files without a date count too


def test_not_a_catalog_is_a_catalog_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"hello": 1}')
    with pytest.raises(CatalogError, match="not a readable STAC"):
        find_scenes(_q(bad))
    with pytest.raises(CatalogError, match="does not exist"):
        find_scenes(_q(tmp_path / "missing.json"))


def test_query_record_hides_credentials_in_the_catalog_url() -> None:
    q = Query(catalog="https://user:secret@stac.example/api/?token=abc123")
    assert q.to_dict()["catalog"] == "https://stac.example/api/"
