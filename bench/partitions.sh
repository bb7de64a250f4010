#!/usr/bin/env bash
# 12 against 1,000 partitions: three alternating rounds of 500,000 1 KiB records each (256 KiB
# batches, acks=1) against one fresh broker, and the broker's anonymous memory at the end.
# Usage: bench/partitions.sh   (SPATE_SKIP_BUILD=1 uses target/release/spate as it is)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source bench/lib.sh
build_spate
start_broker
for round in 1 2 3; do
  for p in 12 1000; do
    r=$(timeout 300 "$SPATE_BIN" bench produce --bootstrap-server "127.0.0.1:$PORT" --topic "parts-$p-$round" --partitions $p --record-size 1024 --num-records 500000 --batch-size 262144 --linger-ms 5 --acks 1 --json 2>/dev/null | tail -1)
    echo "round $round partitions $p: $(echo "$r" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["records_per_sec"]), "rec/s", round(d["mb_per_sec"],1), "MB/s p99", d.get("latency_ms",{}).get("p99"))')"
  done
done
awk '/^(RssAnon)/' /proc/$BROKER_PID/status
