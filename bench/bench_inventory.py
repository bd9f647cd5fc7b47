"""Benchmark: load_inventories on 100,000 servers, against a naive row-by-row validator.

Generates two inventories (a few thousand rows, serverCreateCount up to 200, mixed columns) in a
temporary directory, then measures each loader in a fresh subprocess, so imports and earlier runs
do not blur the figures: wall time of one call, the rise of the process's peak RSS during it,
and the tracemalloc peak of a second call (for the baseline only with --trace-baseline: its
millions of small allocations make tracemalloc take over a minute). Finally both loaders run
here once more and their outputs are compared, to show the baseline does the same work. A
measurement, not a test: it always exits 0.

    .venv/bin/python bench/bench_inventory.py [--servers 100000] [--trace-baseline]
"""

from __future__ import annotations

import argparse
import csv
import difflib
import gc
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path

from benchkit import peak_rss_mb  # bench/benchkit.py

from fleet.errors import InventoryError, Problem
from fleet.ncp.parameters import (
    FEE_SYSTEM_TYPE_CODES,
    IMAGE_CHOICES,
    LISTS,
    MAX_CREATE_SERIAL,
    MAX_DESCRIPTION_BYTES,
    MAX_NICS,
    SCALARS,
    Type,
    valid_server_name,
)

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 3.0
TARGET_MB = 500.0

NIC_FIELDS = ["networkInterfaceOrder", "subnetNo", "ip", "accessControlGroupNoList"]
STORAGE_FIELDS = ["order", "blockStorageSize", "blockStorageVolumeTypeCode", "emptyBlockStorage"]


# --- the inventory -----------------------------------------------------------------------------


def generate(directory: Path, servers: int, files: int = 2) -> list[Path]:
    """Write inventories totalling ``servers`` servers; return their paths."""
    rng = random.Random(20240601)
    columns = [
        "serverName",
        "serverCreateCount",
        "serverCreateStartNo",
        "serverImageNo",
        "serverSpecCode",
        "serverImageProductCode",
        "serverProductCode",
        "memberServerImageInstanceNo",
        "vpcNo",
        "subnetNo",
        "feeSystemTypeCode",
        "isProtectServerTermination",
        "associateWithPublicIp",
        "serverDescription",
        "loginKeyName",
        "initScriptNo",
    ]
    columns += [f"networkInterfaceList.{i}.{f}" for i in (1, 2, 3) for f in NIC_FIELDS]
    columns += [f"blockStorageMappingList.{i}.{f}" for i in (1, 2) for f in STORAGE_FIELDS]
    left, row_no, paths = servers, 0, []
    per_file = -(-servers // files)
    for file_no in range(files):
        path = directory / f"fleet-{file_no}.csv"
        with path.open("w", newline="", encoding="utf-8") as out:
            out.write(f"# generated: {per_file} servers per file\n")
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(columns)
            budget = min(per_file, left)
            while budget > 0:
                row_no += 1
                count = min(budget, rng.randint(1, 200))
                budget -= count
                left -= count
                if row_no % 50 == 0:
                    out.write(f"# group {row_no}\n")
                writer.writerow([_cell(rng, row_no, count, c) for c in columns])
        paths.append(path)
    return paths


def _cell(rng: random.Random, row: int, count: int, column: str) -> str:
    image = row % 10  # 0-6: image no + spec; 7-8: product codes; 9: member image + spec
    nics = 1 + row % 3
    match column.split("."):
        case ["serverName"]:
            return f"grp{row:05d}"
        case ["serverCreateCount"]:
            return str(count)
        case ["serverCreateStartNo"]:
            return str(rng.randint(0, 1000 - count)) if row % 4 == 0 else ""
        case ["serverImageNo"]:
            return "23214590" if image < 7 else ""
        case ["serverSpecCode"]:
            return rng.choice(["s2-g3", "s4-g3", "c8-g3"]) if image < 7 or image == 9 else ""
        case ["serverImageProductCode"]:
            return "SW.VSVR.OS.LNX64.UBNTU.SVR2004.B050" if image in (7, 8) else ""
        case ["serverProductCode"]:
            return "SVR.VSVR.STAND.C002.M008.NET.SSD.B050.G002" if image in (7, 8) else ""
        case ["memberServerImageInstanceNo"]:
            return "75701" if image == 9 else ""
        case ["vpcNo"]:
            return "75001"
        case ["subnetNo"]:
            return str(75101 + row % 4)
        case ["feeSystemTypeCode"]:
            return ["MTRAT", "FXSUM", ""][row % 3]
        case ["isProtectServerTermination" | "associateWithPublicIp"]:
            return rng.choice(["true", "FALSE", "True", ""])
        case ["serverDescription"]:
            return f'group {row}, "batch" servers' if row % 2 else ""
        case ["loginKeyName"]:
            return "bench-key"
        case ["initScriptNo"]:
            return "75401" if row % 5 == 0 else ""
        case ["networkInterfaceList", index, name] if int(index) <= nics:
            return {
                "networkInterfaceOrder": str(int(index) - 1),
                "subnetNo": str(75100 + int(index)) if index != "1" else "",
                "ip": "",
                "accessControlGroupNoList": " ".join(str(75200 + n) for n in range(int(index))),
            }[name]
        case ["blockStorageMappingList", index, name] if row % 3 == 0 or index == "1":
            return {
                "order": index,
                "blockStorageSize": str(100 * int(index)),
                "blockStorageVolumeTypeCode": "CB1",
                "emptyBlockStorage": "true",
            }[name]
    return ""


# --- the naive baseline ------------------------------------------------------------------------

Server = tuple[str, str, int, tuple[tuple[str, str], ...]]
Bad = Callable[[str, str], None]
_NAIVE_CHECKS = {
    Type.INT: re.compile(r"[+-]?[0-9]{1,6}"),
    Type.NUM: re.compile(r"[0-9]+"),
    Type.NUMS: re.compile(r"[0-9]+(?:\s+[0-9]+)*"),
}
_NAIVE_HEAD = list(SCALARS)[: list(SCALARS).index("serverCreateCount")]
_NAIVE_TAIL = list(SCALARS)[list(SCALARS).index("serverName") + 1 :]


def naive_load(paths: Sequence[str | Path]) -> list[Server]:
    """Validate and expand like load_inventories, one cell at a time with the csv module."""
    problems: list[Problem] = []
    out: list[Server] = []
    first_seen: dict[str, tuple[str, int]] = {}
    for path in paths:
        file = os.fspath(path)
        text = Path(path).read_bytes().decode("utf-8-sig")
        lines = text.split("\n")
        kept = [i for i, line in enumerate(lines) if line and not line.startswith("#")]
        reader = csv.reader([lines[i] + "\n" for i in kept], strict=True)
        header = [h.strip() for h in next(reader)]
        known = _naive_header(header, file, kept[0] + 1, problems)
        consumed = reader.line_num
        for cells in reader:
            line = kept[consumed] + 1
            consumed = reader.line_num
            if len(cells) > len(header):
                problems.append(Problem(file, line, None, "more cells than the header"))
                continue
            row = {
                h: c.strip()
                for h, c, k in zip(header, cells, known, strict=False)
                if k and c.strip()
            }

            def bad(column: str, message: str, at: tuple[str, int] = (file, line)) -> None:
                problems.append(Problem(at[0], at[1], column, message))

            _naive_check_cells(row, bad)
            items = _naive_check_lists(row, bad)
            out += _naive_servers(row, items, (file, line), first_seen, bad)
    if problems:
        raise InventoryError(problems)
    return out


def _naive_header(header: list[str], file: str, line: int, problems: list[Problem]) -> list[bool]:
    """Return which header cells are known columns, adding a problem for each other one."""
    known = []
    for name in header:
        parts = name.split(".")
        ok = name in SCALARS or (
            len(parts) == 3 and parts[0] in LISTS and parts[2] in LISTS[parts[0]].fields
        )
        if not ok:
            hint = difflib.get_close_matches(name, list(SCALARS), n=1)
            problems.append(Problem(file, line, name, f"unknown column {hint}"))
        known.append(ok)
    return known


def _naive_type(column: str) -> Type:
    parts = column.split(".")
    return SCALARS[column] if column in SCALARS else LISTS[parts[0]].fields[parts[2]]


def _naive_check_cells(row: dict[str, str], bad: Bad) -> None:
    """Check one row's cells one by one: types, required columns, images, text."""
    for column, value in row.items():
        kind = _naive_type(column)
        if kind in _NAIVE_CHECKS and not _NAIVE_CHECKS[kind].fullmatch(value):
            bad(column, f"bad {kind} {value!r}")
        if kind is Type.BOOL and value.lower() not in ("true", "false"):
            bad(column, f"not a boolean {value!r}")
    for column in ("vpcNo", "subnetNo", "serverName"):
        if column not in row:
            bad(column, "required")
    images = [c for c in IMAGE_CHOICES if c in row]
    if len(images) != 1:
        bad("serverImageNo", f"one image needed {images}")
    if "serverImageNo" in row and "serverSpecCode" not in row:
        bad("serverSpecCode", "required with serverImageNo")
    if "serverSpecCode" in row and ("serverImageProductCode" in row or "serverProductCode" in row):
        bad("serverSpecCode", "not with product codes")
    if row.get("feeSystemTypeCode", "MTRAT") not in FEE_SYSTEM_TYPE_CODES:
        bad("feeSystemTypeCode", "bad fee")
    if len(row.get("serverDescription", "").encode()) > MAX_DESCRIPTION_BYTES:
        bad("serverDescription", "too long")
    if "loginKeyName" in row and not 3 <= len(row["loginKeyName"]) <= 30:
        bad("loginKeyName", "3-30")


def _naive_check_lists(row: dict[str, str], bad: Bad) -> dict[str, dict[int, dict[str, str]]]:
    """Group one row's list cells by list and item, checking orders; return the groups."""
    items: dict[str, dict[int, dict[str, str]]] = {name: {} for name in LISTS}
    for column, value in row.items():
        parts = column.split(".")
        if len(parts) == 3:
            items[parts[0]].setdefault(int(parts[1]), {})[parts[2]] = value
    for list_name, spec in LISTS.items():
        orders: set[str] = set()
        for fields in items[list_name].values():
            if spec.required and spec.required not in fields:
                bad(list_name, "item without its required field")
            elif spec.required:
                if fields[spec.required] in orders:
                    bad(list_name, "duplicate order")
                orders.add(fields[spec.required])
    if len(items["networkInterfaceList"]) > MAX_NICS:
        bad("networkInterfaceList", "too many NICs")
    return items


def _naive_encode(column: str, value: str, key: str) -> list[tuple[str, str]]:
    kind = _naive_type(column)
    if kind is Type.INT:
        return [(key, str(int(value)))]
    if kind is Type.BOOL:
        return [(key, value.lower())]
    if kind is Type.NUMS:
        return [(f"{key}.{n}", v) for n, v in enumerate(value.split(), 1)]
    return [(key, value)]


def _naive_servers(
    row: dict[str, str],
    items: dict[str, dict[int, dict[str, str]]],
    at: tuple[str, int],
    first_seen: dict[str, tuple[str, int]],
    bad: Bad,
) -> list[Server]:
    """Expand one row into its servers, one name and one parameter list at a time."""
    try:
        count = int(row.get("serverCreateCount", "1"))
        start = int(row.get("serverCreateStartNo", "1"))
    except ValueError:
        return []
    if count < 1 or start < 0 or count + start > MAX_CREATE_SERIAL:
        bad("serverCreateCount", "count/start out of range")
        return []
    numbered = "serverCreateCount" in row or "serverCreateStartNo" in row
    out: list[Server] = []
    for serial in range(start, start + count):
        base = row.get("serverName", "")
        name = f"{base}-{serial:03d}" if numbered else base
        if not valid_server_name(name):
            bad("serverName", f"invalid name {name!r}")
        if name in first_seen:
            bad("serverName", f"duplicate {name!r} (also at {first_seen[name]})")
        first_seen.setdefault(name, at)
        params: list[tuple[str, str]] = []
        for column in _NAIVE_HEAD:
            if column in row:
                params += _naive_encode(column, row[column], column)
        params += [("serverCreateCount", "1"), ("serverName", name)]
        for column in _NAIVE_TAIL:
            if column in row:
                params += _naive_encode(column, row[column], column)
        for list_name, spec in LISTS.items():
            present = sorted(items[list_name].items())
            if list_name == "networkInterfaceList" and not present:
                params.append(("networkInterfaceList.1.networkInterfaceOrder", "0"))
            for new, (old, fields) in enumerate(present, 1):
                for item_field in spec.fields:
                    if item_field in fields:
                        column = f"{list_name}.{old}.{item_field}"
                        key = f"{list_name}.{new}.{item_field}"
                        params += _naive_encode(column, fields[item_field], key)
        out.append((name, at[0], at[1], tuple(params)))
    return out


# --- measuring ---------------------------------------------------------------------------------


def fleet_load(paths: Sequence[str | Path]) -> list[Server]:
    """Call load_inventories, in the baseline's shape for comparison."""
    from fleet.inventory import load_inventories

    return [(s.name, s.file, s.line, s.params) for s in load_inventories(paths)]


def child(kind: str, trace: bool, paths: list[str]) -> None:
    """Measure one loader in this fresh process; print the figures as JSON."""
    # Imports, pandas's included, are not measured.
    from fleet.inventory import forget_loaded, load_inventories

    load: Callable[[Sequence[str]], Sized] = load_inventories if kind == "fleet" else naive_load

    gc.collect()
    before = peak_rss_mb()
    start = time.perf_counter()
    result = load(paths)
    seconds = time.perf_counter() - start
    rss_rise = peak_rss_mb() - before
    servers = len(result)
    del result
    gc.collect()
    peak = float("nan")
    if trace:
        forget_loaded()  # a real load, not the process's kept copy of the first one
        tracemalloc.start()
        load(paths)  # the peak is a high-water mark: the result counts while it is alive
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    figures = {"servers": servers, "seconds": seconds, "rss_rise_mb": rss_rise}
    print(json.dumps(figures | {"tracemalloc_peak_mb": peak}))


def measure(kind: str, trace: bool, paths: list[Path]) -> dict[str, float]:
    """Run one loader's measurement in a fresh Python; return its figures (empty if it failed)."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    command = [sys.executable, __file__, "--child", kind, *map(str, paths)]
    done = subprocess.run(
        command + (["--trace-baseline"] if trace else []),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode:
        print(done.stderr, file=sys.stderr)
        return {}
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


@dataclass(frozen=True)
class Options:
    """What to measure, from the command line."""

    servers: int
    trace_baseline: bool
    child: str | None  # in a measuring subprocess: which loader
    paths: list[str]  # in a measuring subprocess: the inventories


@dataclass(frozen=True)
class Results:
    """What was measured: the inventory, each loader's figures, and whether they agree."""

    servers: int
    rows: int
    files: int
    size_mb: float
    figures: dict[str, dict[str, float]]  # by loader: empty if its measurement failed
    same: bool


def parse(argv: Sequence[str] | None = None) -> Options:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--servers", type=int, default=100_000)
    parser.add_argument("--trace-baseline", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    return Options(args.servers, args.trace_baseline, args.child, args.paths)


def run(options: Options) -> Results:
    """Generate the inventory, measure both loaders, and compare their outputs."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = generate(Path(tmp), options.servers)
        rows = sum(
            1 for p in paths for line in p.read_text().splitlines()[1:] if not line.startswith("#")
        )
        size = sum(p.stat().st_size for p in paths) / 2**20
        figures = {
            kind: measure(kind, options.trace_baseline, paths) for kind in ("fleet", "naive")
        }
        same = fleet_load(paths) == naive_load(paths)
    return Results(options.servers, rows, len(paths), size, figures, same)


def report(results: Results) -> None:
    """Print the figures, the speed-up, the target and the comparison."""
    print(
        f"inventory: {results.servers} servers in {results.rows} rows, {results.files} files,"
        f" {results.size_mb:.1f} MB"
    )
    print(f"{'loader':<22}{'servers':>9}{'seconds':>10}{'RSS rise MB':>14}{'tracemalloc MB':>16}")
    for kind, label in (("fleet", "load_inventories"), ("naive", "naive csv baseline")):
        r = results.figures[kind]
        if not r:
            print(f"{label:<22} failed")
            continue
        traced = r["tracemalloc_peak_mb"]
        print(
            f"{label:<22}{r['servers']:>9.0f}{r['seconds']:>10.2f}{r['rss_rise_mb']:>14.1f}"
            + (f"{traced:>16.1f}" if traced == traced else f"{'n/a':>16}")  # NaN: not traced
        )
    ours, naive = results.figures["fleet"], results.figures["naive"]
    if ours and naive:
        print(f"speed-up over the baseline: {naive['seconds'] / ours['seconds']:.1f}x")
    if ours:
        peak = max(ours["rss_rise_mb"], ours["tracemalloc_peak_mb"])  # both are measured
        met = ours["seconds"] < TARGET_SECONDS and peak < TARGET_MB
        print(
            f"target (< {TARGET_SECONDS:.0f} s, < {TARGET_MB:.0f} MB for load_inventories):"
            f" {'met' if met else 'NOT met'} ({ours['seconds']:.2f} s, {peak:.0f} MB)"
        )
    print(
        f"both loaders return identical servers and parameters: {'yes' if results.same else 'NO'}"
    )


def main() -> None:
    """Measure in a subprocess when asked to; otherwise parse, run, report."""
    options = parse()
    if options.child:
        child(options.child, options.child == "fleet" or options.trace_baseline, options.paths)
        return
    report(run(options))


if __name__ == "__main__":
    main()
