"""Per-zone tables as Parquet datasets, written where each group's table is reduced.

A zonal job over 100,000 parcels and 40 dates holds tens of millions of (zone, bin) cells: more than a
driver should gather only to write them out. With a dataset directory (``--parquet DIR/``, ``--zone-stats
DIR/``) each group's table is written where it was reduced (on Spark: by the executors) as part files
under ``group=<name>/`` (hive partitioning: pyarrow, DuckDB, Spark and pandas read the directory as one
table with a ``group`` column). The whole period (``group=all``) is reduced by blocks of zones, so no one
task holds every zone's cells, and it lists every input zone (zeros for those without pixels), as the
single-file tables do. Only a count and the block numbers come back to the driver.

Parts are written into a staging directory beside the target; the driver swaps it in at the end, so a
job that fails leaves the previous dataset as it was. Executors must see the path (a shared file system).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np

from histcalc import heap
from histcalc.bins import BinSpec
from histcalc.errors import OutputError, UsageError
from histcalc.result import merge_records
from histcalc.table_files import text_take, write_row_groups
from histcalc.zonal import ZoneTable, with_zones, zone_blocks
from histcalc.zonal_stats import tidy_columns, zone_stats
from histcalc.zone_pack import PackedTable, pack, unpack
from histcalc.zone_sum import ZoneSum, summed

if TYPE_CHECKING:
    from histcalc.plan import Task
    from histcalc.result import Partial

ALL = "all"
MARKER = "_histcalc.json"
ZONE_BLOCK = 8_192
"""Zones per part of the whole period. Adding up a block holds its cells of every group: with 16,384 parcels
and 40 dates that set the local engine's peak (963 MB; 769 MB with 8,192, the peak then being the tasks')."""

Record = tuple[tuple[Any, ...], Any]


def is_dataset(path: str | None) -> bool:
    """A dataset directory: named with a trailing slash, or an existing directory."""
    return bool(path) and (str(path).endswith(("/", os.sep)) or Path(str(path)).is_dir())


def check_target(flag: str, path: str) -> None:
    """Before any pixel: the directory may be replaced (absent, empty, or a dataset histcalc wrote)."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise UsageError(f"{flag} {path}: a file is in the way of the dataset directory")
    if target.is_dir() and any(target.iterdir()) and not (target / MARKER).exists():
        raise UsageError(f"{flag} {path}: the directory holds other files; give a new or empty directory")


@dataclass(frozen=True)
class ZoneDatasets:
    """Where the per-zone tables go as datasets (None: not as a dataset), and the statistics' percentiles."""

    tidy: str | None = None
    stats: str | None = None
    percentiles: tuple[float, ...] = ()
    zone_block: int = ZONE_BLOCK


@dataclass(frozen=True)
class DatasetSpec:
    """What every writer shares (broadcast once on Spark): staging directories, zone ids, bins."""

    tidy: str | None
    stats: str | None
    ids: tuple[str, ...]
    bins: BinSpec
    percentiles: tuple[float, ...]
    grouped: bool
    zone_block: int


@dataclass
class Written:
    """What the writers report back: zones with counted pixels over the whole period, blocks written."""

    with_pixels: int = 0
    blocks: set[int] = field(default_factory=set)

    def add(self, value: tuple[int, frozenset[int]]) -> None:
        self.with_pixels += value[0]
        self.blocks |= value[1]


def prepare(targets: ZoneDatasets, ids: Sequence[str], bins: BinSpec, grouped: bool) -> DatasetSpec:
    """Staging directories beside the targets, and the spec the writers share."""
    tidy, stats = _staging(targets.tidy), _staging(targets.stats)
    return DatasetSpec(tidy, stats, tuple(ids), bins, targets.percentiles, grouped, targets.zone_block)


def write_reduced(record: Record, spec: DatasetSpec) -> Iterator[Record]:
    """A reduced record: a group's zone table is written (named groups) and sent on in blocks of zones."""
    key, value = record
    if key[0] != "z":
        yield record
        return
    group, table = key[1], value if isinstance(value, ZoneTable) else unpack(value)
    if spec.grouped:
        _write(spec, group or ALL, table, uuid.uuid4().hex)
    for block, part in zone_blocks(table, spec.zone_block):
        yield ("zb", block), part


class BlockParts(list[PackedTable]):
    """One block of zones of every group, packed, gathered where the block is reduced and added up once, densely,
    by :func:`write_whole` (adding them pairwise sorted the growing sum again at every group)."""


def gather_start(value: Any) -> Any:
    """``combineByKey``'s first value of a key: a block's part starts a :class:`BlockParts`."""
    return BlockParts([pack(value)]) if isinstance(value, ZoneTable) else value


def gather_add(gathered: Any, value: Any) -> Any:
    if isinstance(gathered, BlockParts):
        gathered.append(pack(value))
        return gathered
    return merge_records(gathered, value)


def gather_merge(a: Any, b: Any) -> Any:
    if isinstance(a, BlockParts):
        a.extend(b)
        return a
    return merge_records(a, b)


def write_whole(record: Record, spec: DatasetSpec) -> Iterator[Record]:
    """A block of the whole period, reduced over the groups: written with every zone of the block."""
    key, value = record
    if key[0] != "zb":
        yield record
        return
    block = key[1]
    size = spec.zone_block
    zones = np.arange(block * size, min((block + 1) * size, len(spec.ids)), dtype=np.int64)
    table = summed(value) if isinstance(value, BlockParts) else value
    counted = _write(spec, ALL, with_zones(table, zones), f"{block:05d}")
    yield ("zw",), (counted, frozenset([block]))


def finish(spec: DatasetSpec, targets: ZoneDatasets, written: Written) -> int:
    """Blocks with no zone pixel at all, then the staging directories swapped in; zones with pixels."""
    for block in range(-(-len(spec.ids) // spec.zone_block)):
        if block not in written.blocks:
            list(write_whole((("zb", block), ZoneTable.empty()), spec))
    for staging, target in ((spec.tidy, targets.tidy), (spec.stats, targets.stats)):
        if staging is not None and target is not None:
            _publish(staging, target)
    return written.with_pixels


class LocalWriter:
    """The local engine's twin of the Spark stages, streaming: a group is written when its last task is in.

    The engine calls :meth:`done` after merging each result: the tables of the groups whose tasks are
    all counted are taken out of the running total, written (named groups), and their blocks of zones
    appended to one spill file per block beside the staged dataset. :meth:`close` then adds up the whole
    period one block at a time while the writer thread writes the block before. The driver so holds the
    groups still being counted and two blocks of the whole period, not every group's table (100,000 parcels
    x 40 dates: tens of millions of cells) nor the whole period's sums (~300 MB at 12 dates, measured).

    A finished group is written by a thread of its own while the engine counts on (Parquet encoding
    releases the GIL: ~0.15 s a date of 100,000 parcels), one group at a time, so at most one group's
    table waits beside the ones being counted.
    """

    def __init__(self, spec: DatasetSpec, written: Written, tasks_per_group: Mapping[str, int]) -> None:
        self.spec = spec
        self.written = written
        self._left = dict(tasks_per_group)
        root = spec.tidy if spec.tidy is not None else spec.stats
        self._spill = Path(str(root)) / ".whole-period"
        self._blocks: set[int] = set()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="histcalc-dataset-writer")
        self._writing: Future[None] | None = None

    def done(self, tasks: Sequence[Task], total: Partial) -> None:
        """``tasks`` were merged into ``total``: write the groups whose last task it was (in the writer thread,
        once the group before is written; its error is raised here or by :meth:`close`)."""
        for group in (task.group for task in tasks):
            self._left[group] -= 1
            if self._left[group] == 0:
                finished = total.zonal.pop(group, None)
                if finished is not None:
                    self._written()
                    self._writing = self._thread.submit(self._add_sum, group, finished)

    def close(self, total: Partial) -> None:
        """Any group not yet written (a task counted twice would be caught by the engine), then the whole period:
        the writer thread writes one block while this thread adds up the next."""
        try:
            self._written()
            for group, rest in sorted(total.zonal.items()):
                self._add(group, rest.table())
            total.zonal = {}
            for block in sorted(self._blocks):
                whole = summed(_read_parts(self._spill / f"{block:05d}.npy"))
                self._written()
                self._writing = self._thread.submit(self._write_whole, block, whole)
                del whole
            self._written()
        finally:
            self._thread.shutdown()
        shutil.rmtree(self._spill, ignore_errors=True)

    def _write_whole(self, block: int, whole: ZoneTable) -> None:
        for _key, value in write_whole((("zb", block), whole), self.spec):
            self.written.add(value)
        heap.trim()

    def abandon(self) -> None:
        """The job failed: let the group being written finish (its error does not matter now), write no more."""
        with contextlib.suppress(Exception):
            self._written()
        self._thread.shutdown()

    def _written(self) -> None:
        """Wait for the group being written, raising its error."""
        writing, self._writing = self._writing, None
        if writing is not None:
            writing.result()

    def _add_sum(self, group: str, total: ZoneSum) -> None:
        self._add(group, total.table())

    def _add(self, group: str, table: ZoneTable) -> None:
        for (_kind, block), part in write_reduced((("z", group), table), self.spec):
            _append_part(self._spill / f"{block:05d}.npy", part)
            self._blocks.add(block)
        heap.trim()


_FIELDS = tuple(ZoneTable.__dataclass_fields__)
_TIDY_ROWS = 1 << 18


def _append_part(path: Path, table: ZoneTable) -> None:
    """``table``'s arrays appended to ``path`` (a stream of ``.npy`` records, no pickles)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab") as out:
            for name in _FIELDS:
                np.save(out, getattr(table, name), allow_pickle=False)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _read_parts(path: Path) -> Iterator[ZoneTable]:
    with path.open("rb") as stream:
        while stream.peek(1):
            yield ZoneTable(**{name: np.load(stream, allow_pickle=False) for name in _FIELDS})


def _write(spec: DatasetSpec, group: str, table: ZoneTable, part: str) -> int:
    """One part of one group in each dataset; returns the zones of ``table`` with counted pixels."""
    stats = zone_stats(table, spec.bins, spec.percentiles)
    if spec.tidy is not None:
        _write_part(spec.tidy, group, part, _tidy_pieces(spec, table))
    if spec.stats is not None:
        _write_part(spec.stats, group, part, [{"zone": text_take(spec.ids, table.zone), **stats}])
    return int(np.count_nonzero(stats["count"]))


def _tidy_pieces(spec: DatasetSpec, table: ZoneTable) -> Iterator[dict[str, Any]]:
    """The tidy rows of ``table`` a row group at a time (``_TIDY_ROWS`` cells): a date of 100,000 parcels is
    ~2.5 M rows, whose columns, ids and Arrow copies at once took a few hundred MB."""
    n = len(table.cell_zone)
    for start in range(0, max(n, 1), _TIDY_ROWS):
        tidy = tidy_columns(table.only_cells(slice(start, start + _TIDY_ROWS)), None, spec.bins)
        yield {**tidy, "zone": text_take(spec.ids, tidy["zone"])}


def _write_part(root: str, group: str, part: str, pieces: Iterable[dict[str, Any]]) -> None:
    """One Parquet file of the dataset, a row group per piece of columns."""
    folder = Path(root) / f"group={quote(group, safe='')}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_row_groups(folder / f"part-{part}.parquet", pieces, {})
    except OSError as exc:
        raise OutputError(f"cannot write the dataset part {folder}: {exc.strerror or exc}") from exc


def discard(spec: DatasetSpec) -> None:
    """The job failed: its staging directories go (the targets were not touched)."""
    for staging in (spec.tidy, spec.stats):
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def _staging(target: str | None) -> str | None:
    if target is None:
        return None
    path = Path(target.rstrip("/" + os.sep)).resolve()
    return str(path.with_name(f".{path.name}.staging-{uuid.uuid4().hex[:12]}"))


def _publish(staging: str, target: str) -> None:
    """The staging directory becomes ``target`` (the old dataset, checked by :func:`check_target`, goes)."""
    final = Path(target.rstrip("/" + os.sep)).resolve()
    Path(staging).mkdir(parents=True, exist_ok=True)
    (Path(staging) / MARKER).write_text(json.dumps({"format": "hive-partitioned by group", "by": "histcalc"}))
    try:
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    except OSError as exc:
        raise OutputError(f"cannot replace {final}: {exc.strerror or exc} (the new dataset is in {staging})") from exc
