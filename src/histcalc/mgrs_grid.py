"""The Sentinel-2 tiling grid: tile id -> UTM zone, latitude band and 100 km MGRS square. Pure math.

A Sentinel-2 tile (e.g. ``31UFS``) is a 109,800 m square whose upper-left corner is the north-west corner
of its 100 km MGRS square (31UFS: x 600,000, y 5,700,000 in EPSG:32631), so it reaches 9,800 m into the
squares east and south of it. MGRS letters the squares of a zone (NGA.SIG.0012, "AA" scheme):

- columns: ``ABCDEFGH``, ``JKLMNPQR``, ``STUVWXYZ`` for zones 1, 2, 3 (repeating every third zone), the
  first letter at easting 100,000;
- rows: ``A``..``V`` (no I, O) from northing 0, repeating every 2,000 km; even zones start at ``F``.

A row letter names a northing only modulo 2,000 km, so the square's north edge is taken from the file's own
geotransform (the row cycle nearest its top edge). The latitude band letter (C..X, 8 degrees each, X 12)
and the zone's 6-degree span say which part of the square the tile's zone and band own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SQUARE = 100_000.0
TILE = 109_800.0
_COLUMNS = ("ABCDEFGH", "JKLMNPQR", "STUVWXYZ")
_ROWS = "ABCDEFGHJKLMNPQRSTUV"
_EVEN_ZONE_ROW_SHIFT = 5  # even zones letter their rows from F
_ROW_CYCLE = len(_ROWS) * SQUARE
_BANDS = "CDEFGHJKLMNPQRSTUVWX"
_TILE_ID = re.compile(r"^T?(\d{1,2})([C-HJ-NP-X])([A-HJ-NP-Z])([A-HJ-NP-V])$")

BBox = tuple[float, float, float, float]


@dataclass(frozen=True)
class TileId:
    """An MGRS tile id as Sentinel-2 names it: zone, latitude band, column and row letters."""

    zone: int
    band: str
    column: str
    row: str

    @classmethod
    def parse(cls, text: str) -> TileId | None:
        """``31UFS`` or ``T31UFS`` (or ``MGRS-31UFS``); None when ``text`` is not an MGRS tile id."""
        match = _TILE_ID.match(text.strip().upper().removeprefix("MGRS-"))
        if match is None or not 1 <= int(match[1]) <= 60:
            return None
        zone, band, column, row = int(match[1]), match[2], match[3], match[4]
        if column not in _COLUMNS[(zone - 1) % 3]:
            return None  # a column letter of another zone set: not a square of this zone
        return cls(zone, band, column, row)

    def __str__(self) -> str:
        return f"{self.zone:02d}{self.band}{self.column}{self.row}"

    @property
    def north(self) -> bool:
        return self.band >= "N"

    @property
    def epsg(self) -> int:
        """The UTM CRS of the tile (WGS 84 / UTM zone ``zone`` N or S)."""
        return (32600 if self.north else 32700) + self.zone

    @property
    def west(self) -> float:
        """Easting of the square's west edge."""
        return (_COLUMNS[(self.zone - 1) % 3].index(self.column) + 1) * SQUARE

    @property
    def row_south(self) -> float:
        """Northing of the square's south edge, modulo the 2,000 km row cycle."""
        shift = _EVEN_ZONE_ROW_SHIFT if self.zone % 2 == 0 else 0
        return ((_ROWS.index(self.row) - shift) % len(_ROWS)) * SQUARE

    def square(self, top: float) -> BBox:
        """The 100 km square (west, south, east, north) whose row cycle puts its north edge nearest ``top``."""
        cycles = round((top - SQUARE - self.row_south) / _ROW_CYCLE)
        south = self.row_south + cycles * _ROW_CYCLE
        return (self.west, south, self.west + SQUARE, south + SQUARE)

    def tile_bounds(self, top: float) -> BBox:
        """The Sentinel-2 tile's extent: the square grown 9,800 m east and south."""
        w, _, _, n = self.square(top)
        return (w, n - TILE, w + TILE, n)

    def zone_longitudes(self) -> tuple[float, float]:
        """The zone's west and east meridians (the standard 6-degree zones)."""
        west = -180.0 + 6.0 * (self.zone - 1)
        return west, west + 6.0

    def band_latitudes(self) -> tuple[float, float]:
        """The latitude band's south and north parallels (8 degrees each, X 12: 72 to 84 N)."""
        south = -80.0 + 8.0 * _BANDS.index(self.band)
        return south, (84.0 if self.band == "X" else south + 8.0)
