"""Reads an offline W&B run back from its `.wandb` file (see shared notes on W&B offline).

The file is LevelDB's log format after a 7-byte header: 32 KiB blocks of chunks, each with
a 7-byte header (crc32, little-endian length, type FULL/FIRST/MIDDLE/LAST); a record's
payload is a `wandb_internal_pb2.Record`.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

BLOCK, CHUNK_HEADER, FILE_HEADER = 32768, 7, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: Path) -> list[Any]:
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a .wandb file"
    payloads, pending, pos = [], b"", FILE_HEADER
    while pos + CHUNK_HEADER <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < CHUNK_HEADER:  # block trailer: zero padding
            pos += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + CHUNK_HEADER])
        if kind == 0:  # zeroed tail of a block or file
            pos += left_in_block
            continue
        chunk = data[pos + CHUNK_HEADER : pos + CHUNK_HEADER + length]
        pos += CHUNK_HEADER + length
        if kind == FULL:
            payloads.append(chunk)
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            payloads.append(pending + chunk)
    return [wandb_internal_pb2.Record.FromString(p) for p in payloads]


def _name(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


def history(records: list[Any]) -> list[dict[str, Any]]:
    return [
        {_name(i): json.loads(i.value_json) for i in r.history.item}
        for r in records
        if r.WhichOneof("record_type") == "history"
    ]


def config(records: list[Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for r in records:
        if r.WhichOneof("record_type") == "config":
            for item in r.config.update:
                merged[_name(item)] = json.loads(item.value_json)
    return merged


def run_ids(records: list[Any]) -> set[str]:
    return {r.run.run_id for r in records if r.WhichOneof("record_type") == "run"}


def offline_runs(out: Path) -> list[Path]:
    """The run's .wandb files, oldest first (a resumed run writes a second directory)."""
    return sorted((out / "wandb").glob("offline-run-*/run-*.wandb"), key=lambda p: p.parent.name)
