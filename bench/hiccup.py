#!/usr/bin/env python3
"""This machine's own stalls, measured beside a benchmark (like jHiccup): sleep 1 ms again and
again for SECONDS and record how much later than asked each wake-up came. A stall here (the
host taking the vCPUs away, or the other work starving this one) is a stall any process on the
machine saw at that moment, so a benchmark's latency tail can be read against it.

Usage: bench/hiccup.py SECONDS  (prints one JSON line: wake-up delay percentiles in ms)
"""
import json
import sys
import time

seconds = float(sys.argv[1])
delays = []
end = time.monotonic() + seconds
while True:
    asked = time.monotonic()
    if asked >= end:
        break
    time.sleep(0.001)
    delays.append(time.monotonic() - asked - 0.001)
delays.sort()


def pct(p):
    return 1000 * delays[min(len(delays) - 1, int(p / 100 * len(delays)))]


print(json.dumps({"wakeups": len(delays), "p50_ms": pct(50), "p99_ms": pct(99), "p999_ms": pct(99.9), "max_ms": 1000 * delays[-1]}))
