"""Command-line spellings argparse alone gets wrong: negative numbers and numbers after a space.

``--bbox -122.5,37.7,-122.3,37.8`` looks like an option to argparse ("expected one argument"), and
``--bbox 4.9 51.1 5.2 51.2`` gives it four arguments. Before parsing, the numbers that follow a
numeric flag are joined into that flag's one value (``--bbox=-122.5,37.7,-122.3,37.8``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from histcalc.errors import UsageError

# How many numbers each numeric flag takes at most (lists: any number; nothing positional follows).
NUMERIC_FLAGS: dict[str, int] = {
    "--bbox": 4,
    "--range": 2,
    "--scale": 1,
    "--offset": 1,
    "--nodata": 1,
    "--percentiles": 1000,
    "--mask-values": 1000,
}
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:inf|nan)"
_NUMBER_LIST = re.compile(rf"^(?:{_NUMBER})(?:\s*[,\s]\s*(?:{_NUMBER}))*,?$", re.IGNORECASE)


def join_number_args(argv: Sequence[str]) -> list[str]:
    """``argv`` with the numbers after each numeric flag joined into ``--flag=n1,n2,...``."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        flag = argv[i]
        wanted = NUMERIC_FLAGS.get(flag)
        i += 1
        if wanted is None:
            out.append(flag)
            continue
        numbers: list[str] = []
        while i < len(argv) and _NUMBER_LIST.match(argv[i].strip()) and len(numbers) < wanted:
            numbers.extend(split_numbers(argv[i]))
            i += 1
        out.append(f"{flag}={','.join(numbers)}" if numbers else flag)
    return out


def split_numbers(text: str) -> list[str]:
    """The parts of ``1,2,3``, ``1 2 3`` or ``1, 2, 3``."""
    return [p for p in re.split(r"[,\s]+", text.strip()) if p]


def parse_numbers(text: str, flag: str) -> list[float]:
    """Numbers separated by commas and/or spaces; one line naming ``flag`` otherwise."""
    try:
        return [float(p) for p in split_numbers(text)]
    except ValueError as exc:
        raise UsageError(f"{flag} needs comma-separated numbers, got {text!r}") from exc
