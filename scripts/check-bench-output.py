#!/usr/bin/env python3
"""Checks `spiped-bench crypto --json` output (read from stdin): one JSON object per line with
the agreed fields, every required figure present for the portable backend (and for the
hardware backend when the CPU has AES-NI and SHA-NI, and a row of each engine the CPU's flags
allow), every value a positive number.
A format check, not a speed test: the figures themselves are reported, not judged."""
import json
import re
import sys

REQUIRED = ["sha256", "hmac-sha256", "aes256-ctr", "packet-seal", "packet-open", "dh-generate", "dh-shared"]
UNITS = {"sha256": "MB/s", "hmac-sha256": "MB/s", "aes256-ctr": "MB/s", "packet-seal": "MB/s",
         "packet-open": "MB/s", "dh-generate": "op/s", "dh-shared": "op/s"}

flags = set()
for line in open("/proc/cpuinfo"):
    if line.startswith("flags"):
        flags = set(line.split(":", 1)[1].split())
        break
hardware = {"aes", "sha_ni"} <= flags
# (benchmark, engine row) expected for each CPU flag: every engine the CPU can run is measured.
ENGINE_ROWS = {"sha_ni": ("sha256", "sha-ni"), "aes": ("aes256-ctr", "aes-ni"), "vaes": ("aes256-ctr", "vaes"),
               "bmi2": ("dh-shared", "mulx"), "avx512ifma": ("dh-shared", "ifma")}

seen = {}
for number, line in enumerate(sys.stdin, 1):
    record = json.loads(line)
    assert set(record) == {"name", "backend", "unit", "value"}, f"line {number}: fields {sorted(record)}"
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", record["backend"]), f"line {number}: backend {record['backend']}"
    assert isinstance(record["value"], (int, float)) and record["value"] > 0, f"line {number}: value {record['value']}"
    if record["name"] in UNITS:
        assert record["unit"] == UNITS[record["name"]], f"line {number}: unit {record['unit']}"
    seen[(record["name"], record["backend"])] = record["value"]

for name in REQUIRED:
    assert (name, "portable") in seen, f"missing {name} (portable)"
    if hardware and not name.startswith("dh-"):
        assert (name, "hardware") in seen, f"missing {name} (hardware)"
for flag, row in ENGINE_ROWS.items():
    if flag in flags:
        assert row in seen, f"missing {row[0]} ({row[1]}): the CPU has {flag}"
print(f"spiped-bench crypto --json: {len(seen)} figures, format ok")
