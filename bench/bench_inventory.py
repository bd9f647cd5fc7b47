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
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence, Sized
from pathlib import Path

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


def naive_load(
    paths: Sequence[str | Path],
) -> list[tuple[str, str, int, tuple[tuple[str, str], ...]]]:
    """Validate and expand like load_inventories, one cell at a time with the csv module."""
    from fleet.errors import InventoryError, Problem
    from fleet.parameters import (
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

    problems: list[Problem] = []
    out: list[tuple[str, str, int, tuple[tuple[str, str], ...]]] = []
    first_seen: dict[str, tuple[str, int]] = {}
    checks = {
        Type.INT: re.compile(r"[+-]?[0-9]{1,6}"),
        Type.NUM: re.compile(r"[0-9]+"),
        Type.NUMS: re.compile(r"[0-9]+(?:\s+[0-9]+)*"),
    }
    head = list(SCALARS)[: list(SCALARS).index("serverCreateCount")]
    tail = list(SCALARS)[list(SCALARS).index("serverName") + 1 :]
    for path in paths:
        file = os.fspath(path)
        text = Path(path).read_bytes().decode("utf-8-sig")
        lines = text.split("\n")
        kept = [i for i, line in enumerate(lines) if line and not line.startswith("#")]
        reader = csv.reader([lines[i] + "\n" for i in kept], strict=True)
        header = [h.strip() for h in next(reader)]
        known = []
        for name in header:
            parts = name.split(".")
            ok = name in SCALARS or (
                len(parts) == 3 and parts[0] in LISTS and parts[2] in LISTS[parts[0]].fields
            )
            if not ok:
                hint = difflib.get_close_matches(name, list(SCALARS), n=1)
                problems.append(Problem(file, kept[0] + 1, name, f"unknown column {hint}"))
            known.append(ok)
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

            for column, value in row.items():
                parts = column.split(".")
                kind = SCALARS[column] if column in SCALARS else LISTS[parts[0]].fields[parts[2]]
                if kind in checks and not checks[kind].fullmatch(value):
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
            if "serverSpecCode" in row and (
                "serverImageProductCode" in row or "serverProductCode" in row
            ):
                bad("serverSpecCode", "not with product codes")
            if row.get("feeSystemTypeCode", "MTRAT") not in FEE_SYSTEM_TYPE_CODES:
                bad("feeSystemTypeCode", "bad fee")
            if len(row.get("serverDescription", "").encode()) > MAX_DESCRIPTION_BYTES:
                bad("serverDescription", "too long")
            if "loginKeyName" in row and not 3 <= len(row["loginKeyName"]) <= 30:
                bad("loginKeyName", "3-30")
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
            try:
                count = int(row.get("serverCreateCount", "1"))
                start = int(row.get("serverCreateStartNo", "1"))
            except ValueError:
                continue
            if count < 1 or start < 0 or count + start > MAX_CREATE_SERIAL:
                bad("serverCreateCount", "count/start out of range")
                continue
            numbered = "serverCreateCount" in row or "serverCreateStartNo" in row

            def encode(column: str, value: str, key: str) -> list[tuple[str, str]]:
                parts = column.split(".")
                kind = SCALARS[column] if column in SCALARS else LISTS[parts[0]].fields[parts[2]]
                if kind is Type.INT:
                    return [(key, str(int(value)))]
                if kind is Type.BOOL:
                    return [(key, value.lower())]
                if kind is Type.NUMS:
                    return [(f"{key}.{n}", v) for n, v in enumerate(value.split(), 1)]
                return [(key, value)]

            for serial in range(start, start + count):
                base = row.get("serverName", "")
                name = f"{base}-{serial:03d}" if numbered else base
                if not valid_server_name(name):
                    bad("serverName", f"invalid name {name!r}")
                if name in first_seen:
                    bad("serverName", f"duplicate {name!r} (also at {first_seen[name]})")
                first_seen.setdefault(name, (file, line))
                params: list[tuple[str, str]] = []
                for column in head:
                    if column in row:
                        params += encode(column, row[column], column)
                params += [("serverCreateCount", "1"), ("serverName", name)]
                for column in tail:
                    if column in row:
                        params += encode(column, row[column], column)
                for list_name, spec in LISTS.items():
                    present = sorted(items[list_name].items())
                    if list_name == "networkInterfaceList" and not present:
                        params.append(("networkInterfaceList.1.networkInterfaceOrder", "0"))
                    for new, (old, fields) in enumerate(present, 1):
                        for item_field in spec.fields:
                            if item_field in fields:
                                column = f"{list_name}.{old}.{item_field}"
                                key = f"{list_name}.{new}.{item_field}"
                                params += encode(column, fields[item_field], key)
                out.append((name, file, line, tuple(params)))
    if problems:
        raise InventoryError(problems)
    return out


# --- measuring ---------------------------------------------------------------------------------


def fleet_load(
    paths: Sequence[str | Path],
) -> list[tuple[str, str, int, tuple[tuple[str, str], ...]]]:
    """Call load_inventories, in the baseline's shape for comparison."""
    from fleet.inventory import load_inventories

    return [(s.name, s.file, s.line, s.params) for s in load_inventories(paths)]


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(kind: str, trace: bool, paths: list[str]) -> None:
    """Measure one loader in this fresh process; print the figures as JSON."""
    from fleet.inventory import load_inventories  # imports, pandas's included, are not measured

    load: Callable[[Sequence[str]], Sized] = load_inventories if kind == "fleet" else naive_load

    gc.collect()
    before = _maxrss_mb()
    start = time.perf_counter()
    result = load(paths)
    seconds = time.perf_counter() - start
    rss_rise = _maxrss_mb() - before
    servers = len(result)
    del result
    gc.collect()
    peak = float("nan")
    if trace:
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


def main() -> None:
    """Generate the inventory, measure both loaders, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=100_000)
    parser.add_argument("--trace-baseline", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.child == "fleet" or args.trace_baseline, args.paths)
        return

    with tempfile.TemporaryDirectory() as tmp:
        paths = generate(Path(tmp), args.servers)
        rows = sum(
            1 for p in paths for line in p.read_text().splitlines()[1:] if not line.startswith("#")
        )
        size = sum(p.stat().st_size for p in paths) / 2**20
        print(
            f"inventory: {args.servers} servers in {rows} rows, {len(paths)} files, {size:.1f} MB"
        )
        results = {kind: measure(kind, args.trace_baseline, paths) for kind in ("fleet", "naive")}
        print(
            f"{'loader':<22}{'servers':>9}{'seconds':>10}{'RSS rise MB':>14}{'tracemalloc MB':>16}"
        )
        for kind, label in (("fleet", "load_inventories"), ("naive", "naive csv baseline")):
            r = results[kind]
            if not r:
                print(f"{label:<22} failed")
                continue
            traced = r["tracemalloc_peak_mb"]
            print(
                f"{label:<22}{r['servers']:>9.0f}{r['seconds']:>10.2f}{r['rss_rise_mb']:>14.1f}"
                + (f"{traced:>16.1f}" if traced == traced else f"{'n/a':>16}")  # NaN: not traced
            )
        ours = results["fleet"]
        if ours and results["naive"]:
            print(
                f"speed-up over the baseline: {results['naive']['seconds'] / ours['seconds']:.1f}x"
            )
        if ours:
            peak = max(ours["rss_rise_mb"], ours["tracemalloc_peak_mb"])  # both are measured
            met = ours["seconds"] < TARGET_SECONDS and peak < TARGET_MB
            print(
                f"target (< {TARGET_SECONDS:.0f} s, < {TARGET_MB:.0f} MB for load_inventories):"
                f" {'met' if met else 'NOT met'} ({ours['seconds']:.2f} s, {peak:.0f} MB)"
            )
        sys.path.insert(0, str(ROOT))
        same = fleet_load(paths) == naive_load(paths)
        print(f"both loaders return identical servers and parameters: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
