#!/usr/bin/env python3
"""Python side of the cross-client interoperability tests (scripts/interop.sh, and
scripts/cluster-interop.sh against a 3-broker cluster).

Run with the interop venv's interpreter (.venv-interop/bin/python, made by
scripts/install-test-deps.sh). Subcommands:

  produce  --client {confluent,kafka-python} -b HOST:PORT -t TOPIC -n COUNT [--first F]
           [--acks all]
           Produces keyed messages key-<i> -> value-<i>, i = F..COUNT-1 (F: 0), in order,
           each with headers idx=<i> and client=<client>, using the library's default
           producer settings (only bootstrap servers, and acks when --acks is given).
  consume  --client {confluent,kafka-python} -b HOST:PORT -t TOPIC -n COUNT --headers SPEC
           Reads the topic back without a consumer group (manual assign of every partition
           from the beginning), bounded by --timeout seconds and by COUNT, and verifies it.
  verify-kcat --file F -n COUNT --format {kv,pkv,rich} --headers SPEC
           Verifies what `kcat -C` printed, with -f '%k:%s\\n' (kv), '%p %k:%s\\n' (pkv) or
           '%p\\t%o\\t%k\\t%s\\t%h\\n' (rich).
  metadata --file F --broker HOST:PORT [--topic T --partitions N]
           Verifies the JSON printed by `kcat -L -J`.
  group-consume --client {confluent,kafka-python} -b HOST:PORT -t TOPIC -g GROUP
           -n COUNT [--first F] --headers SPEC [--out FILE] [--peer FILE]...
           [--ready-file FILE --partitions P]
           Reads as a member of consumer group GROUP: subscribe(), the library's default
           settings plus the group id and auto.offset.reset=earliest (auto commit on),
           close() at the end (final commit, leave). Expects exactly i = F..COUNT-1;
           alone it verifies what it read; with --peer (the other members' --out files)
           it stops when all of them together have COUNT-F records, and verify-records
           checks the union. --ready-file is created once the member shares the topic's
           P partitions with another member.
  verify-records --file F [--file F2]... -n COUNT [--first F] --headers SPEC
           [--each-nonempty]
           Verifies the union of group-consume --out files (exactly once between them).
  txn-copy -b HOST:PORT --input IN --output OUT -g GROUP --txn-id ID [--crashes C]
           [--seed S] [--work-ms MS] [--progress FILE] [--stop-file FILE] [--debug CTX]
           A consume-transform-produce application, exactly once: copies every record of
           IN to the same partition of OUT (created here) in transactions of up to 100
           records that also commit GROUP's offsets (send_offsets_to_transaction). Each
           copier process (txn-copy-worker, run one after the other) makes a
           transactional producer first (init_transactions fences its predecessor), then
           a read_committed consumer assigned IN's partitions from GROUP's committed
           offsets; rebuilds both on any KafkaException; the first C processes crash on
           purpose in a random transaction (records and offsets flushed, not
           committed). --progress holds the number of records committed so far; the
           copy ends once all of IN is committed and --stop-file exists.
  txn-verify -b HOST:PORT --input IN --output OUT -g GROUP -n COUNT [--min-aborted M]
           Verifies a txn-copy: read_committed, OUT holds every record of IN (COUNT of
           them) exactly once, in its partition, in IN's order; read_uncommitted it holds
           at least M aborted copies more, all of them records of IN; GROUP's committed
           offsets are IN's end offsets.
  txn-produce -b HOST:PORT -t TOPIC --txn-id ID --plan PLAN [--records R]
           [--batches K] [--value-bytes B] [--segment-bytes S] [--out FILE]
           Creates TOPIC (1 partition; segment.bytes S), then one transactional producer
           runs a transaction per letter of PLAN (c: commit, a: abort), each of R records
           (key txn-<t>-<i>) in K flushed batches, so that even an aborted one's records
           are in the log; waits for the last marker (the read_committed end offset at the
           log end). --out: a JSON line per transaction (outcome, first and last offsets).

Verification: exactly the keys/values key-<i>/value-<i> for i in F..COUNT-1 (F: --first,
default 0), each once;
within every partition the i (and the offsets, when known) strictly increase, i.e. the
produced order is preserved per partition; headers match SPEC:
  none            no headers at all
  produced:NAME   idx=<i>,client=NAME (as `produce --client NAME` sends them)
  produced        idx=<i>,client=<any one client name, the same on every message>
  produced:NAME:F-T  idx=<i>,client=NAME for F <= i < T, no headers on the others (records
                  of `produce --client NAME --first F -n T` among ones kcat produced)
  static:a=1,b=2  exactly these headers, in this order, on every message

Every subcommand prints one summary line; on failure the line starts with "FAIL:" and
the exit status is 1 (2 for usage errors).
"""

import argparse
import faulthandler
import json
import logging
import os
import re
import signal
import sys
import time
from collections import Counter, defaultdict

KEY_RE = re.compile(r"key-(\d+)\Z")
VALUE_RE = re.compile(r"value-(\d+)\Z")


class CheckFailed(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def as_text(b):
    if b is None:
        return None
    if isinstance(b, str):
        return b
    return b.decode("utf-8", errors="replace")


def remaining_ms(deadline, floor_ms=100):
    return max(floor_ms, int((deadline - time.monotonic()) * 1000))


# --------------------------------------------------------------------------- verify


class Record:
    __slots__ = ("partition", "offset", "key", "value", "headers")

    def __init__(self, partition, offset, key, value, headers):
        self.partition = partition  # int or None
        self.offset = offset  # int or None
        self.key = key  # str or None
        self.value = value  # str or None
        self.headers = headers  # list of (str, str) or None (not known)


def parse_header_spec(spec):
    if spec == "none":
        return spec, None
    if spec == "produced" or spec.startswith("produced:"):
        name, sep, span = spec.partition(":")[2].partition(":")
        if sep:
            lo, dash, hi = span.partition("-")
            if not name or not dash or not lo.isdigit() or not hi.isdigit():
                raise SystemExit(f"bad header spec {spec!r} (expected produced:NAME:F-T)")
            return "produced-span", (name, int(lo), int(hi))
        return "produced", name or None
    if spec.startswith("static:"):
        pairs = []
        for item in spec[len("static:"):].split(","):
            name, sep, value = item.partition("=")
            if not sep:
                raise SystemExit(f"bad header spec item {item!r}")
            pairs.append((name, value))
        return "static", pairs
    raise SystemExit(f"bad header spec {spec!r}")


def verify(records, count, header_spec, first=0):
    """Raises CheckFailed with a reason, or returns a short summary string.

    Expects exactly i = first..count-1, each once."""
    mode, static = parse_header_spec(header_spec)
    problems = []

    def problem(msg):
        if len(problems) < 8:
            problems.append(msg)
        elif len(problems) == 8:
            problems.append("...")

    seen = Counter()
    per_partition = defaultdict(list)  # partition -> [(offset, i)]
    client_names = set()
    bad_headers = []
    for r in records:
        km = KEY_RE.match(r.key or "")
        vm = VALUE_RE.match(r.value or "")
        if not km or not vm:
            problem(f"unexpected record key={r.key!r} value={r.value!r} "
                    f"(partition {r.partition}, offset {r.offset})")
            continue
        i = int(vm.group(1))
        if int(km.group(1)) != i:
            problem(f"key {r.key!r} carries value {r.value!r}")
            continue
        seen[i] += 1
        per_partition[r.partition].append((r.offset, i))
        if r.headers is not None:
            if mode == "none":
                want = []
            elif mode == "static":
                want = static
            elif mode == "produced-span":
                name, lo, hi = static
                want = [("idx", str(i)), ("client", name)] if lo <= i < hi else []
            else:
                client = static or dict(r.headers).get("client", "?")
                want = [("idx", str(i)), ("client", client)]
                client_names.add(client)
            if r.headers != want:
                bad_headers.append(f"{r.key}: expected {want!r}, got {r.headers!r}")
    if bad_headers:
        problem(f"{len(bad_headers)} messages with wrong headers (first: "
                f"{'; '.join(bad_headers[:2])})")

    expected = set(range(first, count))
    missing = sorted(expected - set(seen))
    extra = sorted(set(seen) - expected)
    dups = sorted(i for i, c in seen.items() if c > 1)
    if missing:
        problem(f"{len(missing)} of {count - first} messages missing (first: "
                f"{', '.join(f'key-{i}' for i in missing[:5])})")
    if extra:
        problem(f"{len(extra)} unexpected indices (first: {extra[:5]})")
    if dups:
        problem(f"{len(dups)} messages delivered more than once (first: "
                f"{', '.join(f'key-{i}' for i in dups[:5])})")
    if mode == "produced" and len(client_names) > 1:
        problem(f"client header differs between messages: {sorted(client_names)}")

    for p, items in sorted(per_partition.items(), key=lambda kv: (kv[0] is None, kv[0])):
        if p is None:
            continue  # partition not known (kcat -f '%k:%s'): no order to check
        for (o1, i1), (o2, i2) in zip(items, items[1:]):
            if i2 <= i1:
                problem(f"partition {p}: order not preserved: value-{i1} (offset {o1}) "
                        f"is followed by value-{i2} (offset {o2})")
                break
            if o1 is not None and o2 is not None and o2 <= o1:
                problem(f"partition {p}: offsets not increasing: {o1} then {o2}")
                break

    if problems:
        raise CheckFailed("; ".join(problems))
    if None in per_partition:
        return f"{len(records)} messages verified (partitions not known)"
    dist = ", ".join(f"p{p}={len(v)}" for p, v in sorted(per_partition.items()))
    return f"{len(records)} messages verified, order kept per partition ({dist})"


# --------------------------------------------------------------------------- produce


def headers_for(i, client):
    return [("idx", str(i).encode()), ("client", client.encode())]


def produce_confluent(args):
    from confluent_kafka import Producer

    conf = {"bootstrap.servers": args.bootstrap}
    if args.acks:
        conf["acks"] = args.acks
    errors = []
    delivered = Counter()
    offsets = defaultdict(list)

    def on_delivery(err, msg):
        if err is not None:
            errors.append(f"{as_text(msg.key())}: {err}")
        else:
            delivered[msg.partition()] += 1
            offsets[msg.partition()].append(msg.offset())

    p = Producer(conf)
    deadline = time.monotonic() + args.timeout
    for i in range(args.first, args.count):
        while True:
            try:
                p.produce(args.topic, key=f"key-{i}", value=f"value-{i}",
                          headers=headers_for(i, "confluent"), on_delivery=on_delivery)
                break
            except BufferError:
                if time.monotonic() > deadline:
                    raise CheckFailed("local queue stayed full until the timeout")
                p.poll(0.1)
        p.poll(0)
    remaining = p.flush(max(0.0, deadline - time.monotonic()))
    return finish_produce(args, remaining, errors, delivered, offsets)


def produce_kafka_python(args):
    from kafka import KafkaProducer

    conf = {"bootstrap_servers": args.bootstrap}
    if args.acks:
        conf["acks"] = args.acks
    deadline = time.monotonic() + args.timeout
    producer = KafkaProducer(**conf)
    try:
        futures = [
            producer.send(args.topic, key=f"key-{i}".encode(), value=f"value-{i}".encode(),
                          headers=headers_for(i, "kafka-python"))
            for i in range(args.first, args.count)
        ]
        try:
            producer.flush(timeout=max(0.0, deadline - time.monotonic()))
        except Exception as e:  # KafkaTimeoutError
            log(f"flush: {type(e).__name__}: {e}")
        errors, delivered, offsets = [], Counter(), defaultdict(list)
        remaining = 0
        for i, f in enumerate(futures):
            if not f.is_done:
                remaining += 1
            elif f.failed():
                errors.append(f"key-{args.first + i}: "
                              f"{type(f.exception).__name__}: {f.exception}")
            else:
                md = f.value
                delivered[md.partition] += 1
                offsets[md.partition].append(md.offset)
    finally:
        producer.close(timeout=5)
    return finish_produce(args, remaining, errors, delivered, offsets)


def finish_produce(args, remaining, errors, delivered, offsets):
    total = sum(delivered.values())
    if errors:
        raise CheckFailed(f"{len(errors)} delivery errors (first: {errors[:3]})")
    if remaining:
        raise CheckFailed(f"{remaining} messages still undelivered after {args.timeout}s")
    if total != args.count - args.first:
        raise CheckFailed(f"{total} of {args.count - args.first} delivery reports")
    for p, offs in offsets.items():
        if len(set(offs)) != len(offs):
            raise CheckFailed(f"partition {p}: the same offset was reported twice")
    dist = ", ".join(f"p{p}={n}" for p, n in sorted(delivered.items()))
    return f"{total} messages delivered ({dist})"


# --------------------------------------------------------------------------- consume


def consume_confluent(args):
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    deadline = time.monotonic() + args.timeout
    c = Consumer({
        "bootstrap.servers": args.bootstrap,
        # Required by the library, but never joined: we only assign() below.
        "group.id": "spate-interop-unused",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    })
    records = []
    try:
        partitions = None
        last_err = None
        while partitions is None:
            try:
                wait = max(0.1, min(5.0, deadline - time.monotonic()))
                md = c.list_topics(args.topic, timeout=wait)
                tmd = md.topics.get(args.topic)
                if tmd is not None and tmd.error is None and tmd.partitions:
                    partitions = sorted(tmd.partitions)
                    break
                last_err = tmd.error if tmd is not None else "topic not in metadata"
            except Exception as e:  # KafkaException on timeout
                last_err = e
            if time.monotonic() > deadline:
                raise CheckFailed(f"no metadata for {args.topic}: {last_err}")
            time.sleep(0.2)
        c.assign([TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in partitions])
        at_eof = set()
        all_eof_since = None
        while len(records) < args.count and time.monotonic() < deadline:
            # Every partition at its end for a while: what is missing won't come.
            if all_eof_since is not None and time.monotonic() - all_eof_since > 2.0:
                break
            msg = c.poll(min(0.5, max(0.0, deadline - time.monotonic())))
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    at_eof.add(msg.partition())
                    if len(at_eof) == len(partitions) and all_eof_since is None:
                        all_eof_since = time.monotonic()
                    continue
                raise CheckFailed(f"consume error: {msg.error()}")
            at_eof.discard(msg.partition())
            all_eof_since = None
            hdrs = [(k, as_text(v)) for k, v in (msg.headers() or [])]
            records.append(Record(msg.partition(), msg.offset(), as_text(msg.key()),
                                  as_text(msg.value()), hdrs))
        # Linger briefly so that duplicates past the expected count are noticed too.
        linger = time.monotonic() + 0.5
        while time.monotonic() < min(linger, deadline):
            msg = c.poll(0.1)
            if msg is not None and not msg.error():
                hdrs = [(k, as_text(v)) for k, v in (msg.headers() or [])]
                records.append(Record(msg.partition(), msg.offset(), as_text(msg.key()),
                                      as_text(msg.value()), hdrs))
    finally:
        c.close()
    log(f"confluent consumer: {len(records)} records from partitions {partitions}")
    return verify(records, args.count, args.headers)


def consume_kafka_python(args):
    from kafka import KafkaConsumer, TopicPartition

    deadline = time.monotonic() + args.timeout
    c = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        consumer_timeout_ms=int(args.timeout * 1000),
    )
    records = []
    try:
        partitions = None
        while not partitions:
            partitions = c.partitions_for_topic(args.topic)
            if partitions:
                break
            if time.monotonic() > deadline:
                raise CheckFailed(f"no partitions known for {args.topic}")
            time.sleep(0.2)
        partitions = sorted(partitions)
        tps = [TopicPartition(args.topic, p) for p in partitions]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        # Everything was produced before, so the end of each partition is known now.
        end = c.end_offsets(tps, timeout_ms=remaining_ms(deadline))

        def at_end(tp):
            pos = c.position(tp, timeout_ms=remaining_ms(deadline))
            return pos is not None and pos >= end[tp]

        while len(records) < args.count and time.monotonic() < deadline:
            if all(at_end(tp) for tp in tps):
                break  # at the end of every partition: what is missing won't come
            batch = c.poll(timeout_ms=500)
            for tp, msgs in batch.items():
                for m in msgs:
                    hdrs = [(k, as_text(v)) for k, v in (m.headers or [])]
                    records.append(Record(tp.partition, m.offset, as_text(m.key),
                                          as_text(m.value), hdrs))
        batch = c.poll(timeout_ms=500)  # notice duplicates past the expected count
        for tp, msgs in batch.items():
            for m in msgs:
                hdrs = [(k, as_text(v)) for k, v in (m.headers or [])]
                records.append(Record(tp.partition, m.offset, as_text(m.key),
                                      as_text(m.value), hdrs))
    finally:
        c.close(autocommit=False, timeout_ms=5000)
    log(f"kafka-python consumer: {len(records)} records from partitions {partitions}")
    return verify(records, args.count, args.headers)


# --------------------------------------------------------------------------- group consume
#
# A consumer-group member: subscribe() (never assign), the library's default consumer
# settings plus group id and auto.offset.reset=earliest (so auto commit is on), and a
# proper close() at the end, which makes the final offset commit and leaves the group.


class ConfluentMember:
    def __init__(self, args):
        from confluent_kafka import Consumer

        conf = {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "auto.offset.reset": "earliest",
        }
        if args.debug:
            conf["debug"] = args.debug
        self.c = Consumer(conf)
        self.c.subscribe([args.topic])
        self.topic = args.topic

    def poll(self, timeout):
        from confluent_kafka import KafkaError

        msg = self.c.poll(timeout)
        if msg is None:
            return []
        if msg.error():
            if msg.error().code() == KafkaError._PARTITION_EOF:
                return []
            raise CheckFailed(f"consume error: {msg.error()}")
        hdrs = [(k, as_text(v)) for k, v in (msg.headers() or [])]
        return [Record(msg.partition(), msg.offset(), as_text(msg.key()),
                       as_text(msg.value()), hdrs)]

    def assignment(self):
        return frozenset(tp.partition for tp in self.c.assignment() if tp.topic == self.topic)

    def close(self):
        self.c.close()


class KafkaPythonMember:
    def __init__(self, args):
        from kafka import KafkaConsumer

        self.c = KafkaConsumer(
            bootstrap_servers=args.bootstrap,
            group_id=args.group,
            auto_offset_reset="earliest",
        )
        self.c.subscribe([args.topic])

    def poll(self, timeout):
        out = []
        for tp, msgs in self.c.poll(timeout_ms=int(timeout * 1000)).items():
            for m in msgs:
                hdrs = [(k, as_text(v)) for k, v in (m.headers or [])]
                out.append(Record(tp.partition, m.offset, as_text(m.key), as_text(m.value),
                                  hdrs))
        return out

    def assignment(self):
        return frozenset(tp.partition for tp in self.c.assignment())

    def close(self):
        self.c.close()  # autocommit=True: commits what poll() returned, then leaves


def record_json(r):
    return json.dumps({"p": r.partition, "o": r.offset, "k": r.key, "v": r.value,
                       "h": r.headers})


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def group_consume(args):
    """Consumes as a member of args.group until the records expected (COUNT - FIRST, by
    this member alone or, with --peer, together with the peers' --out files) are in,
    then lingers LINGER seconds to notice extra ones, and closes; bounded by --timeout.
    Without --peer, verifies its records; with --peer, the caller verifies the union."""
    deadline = time.monotonic() + args.timeout
    target = args.count - args.first
    member = None
    records = []
    history = []  # assignments seen, in order
    out = open(args.out, "w", encoding="utf-8") if args.out else None
    ready_written = False
    reached_at = None
    timed_out = False
    idle_exit = False
    try:
        member = (ConfluentMember if args.client == "confluent" else KafkaPythonMember)(args)
        assignment = frozenset()
        last_progress = time.monotonic()
        next_peer_check = 0.0
        peer_total = 0
        while True:
            now = time.monotonic()
            if reached_at is None:
                if args.peer and now >= next_peer_check:
                    peer_total = sum(count_lines(p) for p in args.peer)
                    next_peer_check = now + 0.2
                if len(records) + peer_total >= target:
                    reached_at = now
            if reached_at is not None and now - reached_at >= args.linger:
                break
            if now >= deadline:
                timed_out = True
                break
            # Alone: assigned, caught up and idle for a while means what is missing
            # won't come (fail sooner than the timeout).
            if (not args.peer and reached_at is None and assignment
                    and now - last_progress > args.idle):
                idle_exit = True
                break
            got = member.poll(min(0.2, max(0.01, deadline - now)))
            a = member.assignment()
            if a != assignment:
                assignment = a
                history.append(sorted(a))
                last_progress = time.monotonic()
                log(f"{args.client} member of {args.group}: assigned {sorted(a)} "
                    f"after {len(records)} records")
            if got:
                records.extend(got)
                last_progress = time.monotonic()
                if out:
                    out.write("".join(record_json(r) + "\n" for r in got))
                    out.flush()
            if (args.ready_file and not ready_written and args.partitions
                    and 0 < len(assignment) < args.partitions):
                # The partitions are shared: another member is in the group too.
                with open(args.ready_file, "w") as f:
                    f.write(f"{sorted(assignment)}\n")
                ready_written = True
    finally:
        if out:
            out.close()
        if member is not None:
            t0 = time.monotonic()
            member.close()
            log(f"{args.client} member of {args.group}: closed in "
                f"{time.monotonic() - t0:.2f}s")
    hist = " -> ".join(str(h) for h in history) or "none"
    log(f"{args.client} member of {args.group}: {len(records)} records; "
        f"assignments {hist}")
    if args.peer:
        if timed_out:
            raise CheckFailed(f"{len(records)} records here, {peer_total} at the peers, "
                              f"{target} expected, after {args.timeout}s "
                              f"(assignments {hist})")
        return f"{len(records)} records (assignments {hist})"
    if timed_out and not records:
        raise CheckFailed(f"no records within {args.timeout}s (assignments {hist})")
    why = " (stopped: idle)" if idle_exit else (" (stopped: timeout)" if timed_out else "")
    return (verify(records, args.count, args.headers, args.first)
            + f"; group {args.group}, assignments {hist}{why}")


def verify_records(args):
    """Verifies the union of group members' --out files: exactly FIRST..COUNT-1, once."""
    records = []
    per_file = []
    for path in args.file:
        n = 0
        with open(path, encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                records.append(Record(d["p"], d["o"], d["k"], d["v"],
                                      [tuple(h) for h in d["h"]]))
                n += 1
        per_file.append(n)
    if args.each_nonempty and 0 in per_file:
        raise CheckFailed(f"a member got no records at all: {per_file} records per member")
    # Members hand partitions over to each other: check the order by offset.
    records.sort(key=lambda r: (r.partition, r.offset))
    summary = verify(records, args.count, args.headers, args.first)
    return f"{summary}; per member {'+'.join(map(str, per_file))}"


# --------------------------------------------------------------------------- transactions
#
# txn-copy: a consume-transform-produce application, exactly once (KIP-98): it copies every
# record of an input topic to the same partition of an output topic in transactions of up
# to TXN_MAX records, each of which also commits the input offsets it read up to
# (send_offsets_to_transaction). Each copier process ("worker") builds a transactional
# producer and a read_committed consumer; on any KafkaException it drops both and builds
# them anew, as a restarted application would; a worker told to --crash-at its K-th
# transaction writes that transaction's records and offsets, flushes them to the broker and
# exits without committing (os._exit), and the supervisor starts the next worker, whose
# init_transactions fences the crashed one and aborts its transaction.

TXN_MAX = 100  # records per transaction, at most
TXN_GATHER = 0.3  # seconds to gather a transaction's records
TXN_CRASH_EXIT = 3  # a worker's exit status when it crashed on purpose


def op_timeout(deadline, most):
    """A client call's timeout: at most MOST seconds, and never past the deadline."""
    return max(0.5, min(most, deadline - time.monotonic()))


def write_atomically(path, text):
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def topic_partitions(client, topic, deadline):
    """The partition ids of TOPIC, from metadata, retried until the deadline."""
    last_err = None
    while True:
        try:
            md = client.list_topics(topic, timeout=op_timeout(deadline, 5))
            tmd = md.topics.get(topic)
            if tmd is not None and tmd.error is None and tmd.partitions:
                return sorted(tmd.partitions)
            last_err = tmd.error if tmd is not None else "topic not in metadata"
        except Exception as e:  # KafkaException on timeout
            last_err = e
        if time.monotonic() > deadline:
            raise CheckFailed(f"no metadata for {topic}: {last_err}")
        time.sleep(0.2)


class TxnCopier:
    """One incarnation of the copier's clients. The producer comes first: its
    init_transactions fences the previous incarnation and aborts its open transaction,
    whose pending offsets would otherwise hold back the committed offsets a read_committed
    consumer asks for (librdkafka's OffsetFetch sets require_stable: UNSTABLE_OFFSET_COMMIT
    until that transaction ends). Then the consumer is assigned every input partition from
    the group's committed offsets (the beginning where there are none)."""

    def __init__(self, args, partitions, deadline):
        from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaException, Producer,
                                     TopicPartition)

        self.args = args
        self.producer = None
        self.consumer = None
        # metadata.recovery.strategy=none: with the one broker killed, librdkafka (2.10 and
        # later) would re-bootstrap and decommission its broker handles, and a
        # send_offsets_to_transaction then waits for ever, past its timeout, on the
        # decommissioned group coordinator (librdkafka issues #5511 and #5456).
        self.producer = Producer({
            "bootstrap.servers": args.bootstrap,
            "metadata.recovery.strategy": "none",
            "transactional.id": args.txn_id,
            "linger.ms": 5,
            "transaction.timeout.ms": 10000,
            "message.timeout.ms": 10000,
            **({"debug": args.debug} if args.debug else {}),
        })
        self.producer.init_transactions(op_timeout(deadline, 15))
        self.consumer = Consumer({
            "bootstrap.servers": args.bootstrap,
            "metadata.recovery.strategy": "none",
            "group.id": args.group,
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "fetch.wait.max.ms": 50,
            **({"debug": args.debug} if args.debug else {}),
        })
        committed = self.consumer.committed(
            [TopicPartition(args.input, p) for p in partitions],
            timeout=op_timeout(deadline, 10))
        self.position = {}  # partition -> the next offset to copy (as committed)
        assignment = []
        for tp in committed:
            if tp.error is not None:
                raise KafkaException(tp.error)
            start = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            self.position[tp.partition] = max(tp.offset, 0)
            assignment.append(TopicPartition(args.input, tp.partition, start))
        self.consumer.assign(assignment)

    def copy_once(self, deadline, crash=False):
        """One transaction of up to TXN_MAX records; how many it copied (0: none to read).
        With CRASH, the transaction's records and offsets are written and flushed, and
        not committed."""
        from confluent_kafka import KafkaException, TopicPartition

        batch = []
        gather_end = time.monotonic() + TXN_GATHER
        while len(batch) < TXN_MAX:
            left = gather_end - time.monotonic()
            if left <= 0:
                break
            for m in self.consumer.consume(TXN_MAX - len(batch), timeout=left):
                if m.error() is not None:
                    raise KafkaException(m.error())
                batch.append(m)
        if not batch:
            return 0
        nxt = dict(self.position)
        for m in batch:  # the input is not transactional: its offsets have no gaps
            if m.offset() != nxt[m.partition()]:
                raise CheckFailed(
                    f"the consumer read {self.args.input} partition {m.partition()} at "
                    f"offset {m.offset()}, where offset {nxt[m.partition()]} was next "
                    f"(positions as committed: {self.position})")
            nxt[m.partition()] = m.offset() + 1
        p = self.producer
        p.begin_transaction()
        for m in batch:
            while True:
                try:
                    p.produce(self.args.output, key=m.key(), value=m.value(),
                              headers=m.headers(), partition=m.partition())
                    break
                except BufferError:
                    p.poll(0.05)
        if self.args.work_ms:
            # The application's own work on the records, while the transaction is open
            # and its records are on their way.
            time.sleep(self.args.work_ms / 1000)
        offsets = [TopicPartition(self.args.input, part, off)
                   for part, off in sorted(nxt.items()) if off != self.position[part]]
        p.send_offsets_to_transaction(offsets, self.consumer.consumer_group_metadata(),
                                      op_timeout(deadline, 10))
        if crash:
            left = p.flush(op_timeout(deadline, 10))
            if left:
                raise KafkaException(f"{left} records not delivered before the crash")
            return len(batch)
        p.commit_transaction(op_timeout(deadline, 10))
        self.position = nxt
        return len(batch)

    def close(self):
        if self.consumer is not None:
            try:
                self.consumer.close()
            except Exception as e:
                log(f"txn-copy: consumer close: {e}")
        self.consumer = None
        self.producer = None  # destroyed by the garbage collector


def txn_copy_worker(args):
    """One copier process; prints its statistics as a JSON line. Copies until every input
    partition's committed offset is at its end (--ends) and --stop-file exists; exits with
    TXN_CRASH_EXIT (not committing) in its --crash-at-th transaction."""
    from confluent_kafka import KafkaException

    # A worker stuck in a client call past its bound shows where, on stderr (as it does
    # on kill -USR1 at any time).
    faulthandler.dump_traceback_later(args.timeout + 0.5, exit=True)
    faulthandler.register(signal.SIGUSR1)
    deadline = time.monotonic() + args.timeout
    ends = {int(p): int(o) for p, o in (item.split(":") for item in args.ends.split(","))}
    partitions = sorted(ends)
    stats = {"starts": 0, "failures": 0, "transactions": 0, "copied": 0, "crashed": 0,
             "errors": []}

    def note_error(what, e):
        stats["failures"] += 1
        text = f"{what}: {e}"
        log(f"txn-copy worker {os.getpid()}: {text}")
        if len(stats["errors"]) < 5:
            stats["errors"].append(text)

    copier = None
    attempts = 0  # transactions begun by this worker (the crash comes at --crash-at)
    try:
        while True:
            if time.monotonic() > deadline:
                raise CheckFailed(f"the copy did not finish within {args.timeout}s "
                                  f"({json.dumps(stats)})")
            if copier is None:
                try:
                    copier = TxnCopier(args, partitions, deadline)
                except KafkaException as e:  # e.g. the broker is down just now
                    note_error("start", e)
                    time.sleep(0.3)
                    continue
                stats["starts"] += 1
                if args.progress:
                    write_atomically(args.progress, f"{sum(copier.position.values())}\n")
            if (all(copier.position[p] >= ends[p] for p in partitions)
                    and (not args.stop_file or os.path.exists(args.stop_file))):
                break
            crash = args.crash_at > 0 and attempts + 1 >= args.crash_at
            try:
                n = copier.copy_once(deadline, crash)
            except KafkaException as e:
                # As an application restarts: a new producer (which fences this one and
                # aborts its transaction) and a consumer from the committed offsets.
                note_error("copy", e)
                copier.close()
                copier = None
                continue
            if n == 0:
                continue
            attempts += 1
            if crash:
                stats["crashed"] = n
                print(json.dumps(stats), flush=True)
                os._exit(TXN_CRASH_EXIT)
            stats["transactions"] += 1
            stats["copied"] += n
            if args.progress:
                write_atomically(args.progress, f"{sum(copier.position.values())}\n")
    finally:
        if copier is not None:
            copier.close()
    return json.dumps(stats)


def txn_copy(args):
    """The copier's supervisor: runs workers one after the other (the first --crashes of
    them crash on purpose, each in a random transaction) until one finishes the copy."""
    import random
    import subprocess

    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic

    started = time.monotonic()
    deadline = started + args.timeout
    rng = random.Random(args.seed)
    c = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "spate-interop-unused",
                  "enable.auto.commit": False})
    try:
        partitions = topic_partitions(c, args.input, deadline)
        ends = {}
        for p in partitions:
            _, hi = c.get_watermark_offsets(TopicPartition(args.input, p),
                                             timeout=op_timeout(deadline, 10))
            ends[p] = hi
    finally:
        c.close()
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    fut = admin.create_topics([NewTopic(args.output, len(partitions), 1)],
                              operation_timeout=10)[args.output]
    try:
        fut.result(timeout=op_timeout(deadline, 15))
    except Exception as e:
        if "TOPIC_ALREADY_EXISTS" not in str(e):
            raise CheckFailed(f"create topic {args.output}: {e}")
    log(f"txn-copy: {args.input} ends {ends}; {args.output} created")

    proc = None

    def on_term(signum, frame):
        if proc is not None and proc.poll() is None:
            proc.kill()
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    totals = Counter()
    errors = []
    workers = crashes = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 1:
            raise CheckFailed(f"the copy did not finish within {args.timeout}s "
                              f"({workers} workers, {crashes} crashes)")
        crash_at = rng.randint(3, 8) if crashes < args.crashes else 0
        cmd = [sys.executable, os.path.abspath(__file__), "txn-copy-worker",
               "-b", args.bootstrap, "--input", args.input, "--output", args.output,
               "-g", args.group, "--txn-id", args.txn_id,
               "--ends", ",".join(f"{p}:{o}" for p, o in sorted(ends.items())),
               "--crash-at", str(crash_at), "--timeout", f"{left - 1:.1f}"]
        if args.progress:
            cmd += ["--progress", args.progress]
        if args.stop_file:
            cmd += ["--stop-file", args.stop_file]
        if args.debug:
            cmd += ["--debug", args.debug]
        if args.work_ms:
            cmd += ["--work-ms", str(args.work_ms)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        workers += 1
        try:
            out, _ = proc.communicate(timeout=left)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise CheckFailed(f"copier worker {workers} did not finish within the "
                              f"{args.timeout}s bound")
        last = (out.strip().splitlines() or [""])[-1]
        try:
            stats = json.loads(last)
        except ValueError:
            stats = None
        if stats is None or proc.returncode not in (0, TXN_CRASH_EXIT):
            raise CheckFailed(f"copier worker {workers} exited with status "
                              f"{proc.returncode}: {last.removeprefix('FAIL: ') or '-'}")
        for k in ("starts", "failures", "transactions", "copied"):
            totals[k] += stats[k]
        errors.extend(stats["errors"])
        if proc.returncode == TXN_CRASH_EXIT:
            crashes += 1
            totals["crash_records"] += stats["crashed"]
            log(f"txn-copy: worker {workers} crashed in its transaction {crash_at} "
                f"(with {stats['crashed']} records); starting another")
            continue
        break
    # (What the output holds is for txn-verify to say: a commit that failed here may
    # have gone through at the broker, so these counts are the copiers' own view.)
    kinds = Counter(re.sub(r"^(\w+): (?:KafkaError\{code=)?([\w.]+).*", r"\1 \2", e)
                    for e in errors)
    kinds_text = ", ".join(f"{k} x{n}" for k, n in kinds.most_common(4)) or "none"
    return (f"{totals['copied']} records committed in {totals['transactions']} "
            f"transactions; {workers} copier processes ({crashes} crashed with "
            f"{totals['crash_records']} records uncommitted), {totals['starts']} client "
            f"builds, {totals['failures']} rebuilds after errors ({kinds_text}); "
            f"{time.monotonic() - started:.1f}s")


def read_partitions(bootstrap, topic, isolation, deadline):
    """Every record of TOPIC a consumer with ISOLATION reads up to the end of each partition
    (the high watermark; for read_committed the last stable offset): partition -> list."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "spate-interop-unused",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "isolation.level": isolation,
        "fetch.wait.max.ms": 100,
    })
    try:
        partitions = topic_partitions(c, topic, deadline)
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        out = {p: [] for p in partitions}
        at_end = set()
        while len(at_end) < len(partitions):
            if time.monotonic() > deadline:
                raise CheckFailed(f"a {isolation} reader of {topic} did not reach the end "
                                  f"of partitions {sorted(set(partitions) - at_end)}")
            for m in c.consume(500, timeout=0.2):
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        at_end.add(m.partition())
                        continue
                    raise CheckFailed(f"{isolation} reader of {topic}: {m.error()}")
                at_end.discard(m.partition())
                hdrs = [(k, as_text(v)) for k, v in (m.headers() or [])]
                out[m.partition()].append(Record(m.partition(), m.offset(), as_text(m.key()),
                                                 as_text(m.value()), hdrs))
        return out
    finally:
        c.close()


def txn_verify(args):
    """The output holds, read_committed, exactly the input records, each once, in the
    input's order, in the same partition; read_uncommitted it holds more (the aborted
    copies), all of them input records; the group's offsets are at the input's ends."""
    from confluent_kafka import Consumer, TopicPartition

    deadline = time.monotonic() + args.timeout
    ident = lambda r: (r.key, r.value, tuple(r.headers))  # noqa: E731
    inp = read_partitions(args.bootstrap, args.input, "read_uncommitted", deadline)
    total_in = sum(len(v) for v in inp.values())
    if total_in != args.count:
        raise CheckFailed(f"the input {args.input} holds {total_in} records, not {args.count}")
    committed = read_partitions(args.bootstrap, args.output, "read_committed", deadline)
    everything = read_partitions(args.bootstrap, args.output, "read_uncommitted", deadline)
    problems = []
    if sorted(committed) != sorted(inp):
        problems.append(f"output partitions {sorted(committed)}, input {sorted(inp)}")
    for p in sorted(inp):
        want = [ident(r) for r in inp[p]]
        got = [ident(r) for r in committed.get(p, [])]
        if got == want:
            continue
        counts, wanted = Counter(got), set(want)
        dups = sum(1 for n in counts.values() if n > 1)
        missing = sum(1 for w in want if w not in counts)
        foreign = sum(1 for g in counts if g not in wanted)
        first = next((i for i, (g, w) in enumerate(zip(got, want)) if g != w),
                     min(len(got), len(want)))
        problems.append(
            f"partition {p}: {len(got)} records read_committed, {len(want)} in the input "
            f"({missing} missing, {dups} duplicated, {foreign} not from the input "
            f"partition); first difference at position {first}: "
            f"{got[first][0] if first < len(got) else 'end'} where "
            f"{want[first][0] if first < len(want) else 'end'} was expected")
    total_all = sum(len(v) for v in everything.values())
    for p, recs in sorted(everything.items()):
        known = {ident(r) for r in inp.get(p, [])}
        strangers = [r for r in recs if ident(r) not in known]
        if strangers:
            problems.append(f"partition {p}: {len(strangers)} records read_uncommitted "
                            f"that are no input record of it (first {strangers[0].key} at "
                            f"offset {strangers[0].offset})")
    aborted = total_all - total_in
    if aborted < args.min_aborted:
        problems.append(f"read_uncommitted sees {total_all} records: {aborted} aborted "
                        f"copies, expected at least {args.min_aborted}")
    c = Consumer({"bootstrap.servers": args.bootstrap, "group.id": args.group,
                  "enable.auto.commit": False, "isolation.level": "read_committed"})
    try:
        offs = c.committed([TopicPartition(args.input, p) for p in sorted(inp)],
                           timeout=op_timeout(deadline, 10))
    finally:
        c.close()
    at = {tp.partition: tp.offset for tp in offs}
    want_at = {p: (recs[-1].offset + 1 if recs else 0) for p, recs in inp.items()}
    if at != want_at:
        problems.append(f"group {args.group} committed offsets {at}, expected the input's "
                        f"ends {want_at}")
    if problems:
        raise CheckFailed("; ".join(problems))
    dist = ", ".join(f"p{p}={len(v)}" for p, v in sorted(committed.items()))
    return (f"read_committed: {total_in} records exactly once, in order per partition "
            f"({dist}); read_uncommitted: {total_all} ({aborted} aborted copies); group "
            f"offsets at the input's ends")


# --------------------------------------------------------------------------- txn produce


def txn_produce(args):
    """Creates TOPIC (1 partition, --segment-bytes), then runs one transaction per letter of
    --plan (c: commit, a: abort) with one transactional producer: each writes --records
    records in --batches flushed parts (one batch each; an aborted transaction's records
    are in the log too) and commits or aborts. Then waits for the last marker: the
    read_committed end offset (ListOffsets, the last stable offset) at the log end.
    --out gets one JSON line per transaction: its outcome and its records' offsets."""
    from confluent_kafka import IsolationLevel, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

    if not args.plan or set(args.plan) - {"c", "a"}:
        raise SystemExit(f"bad --plan {args.plan!r}: want letters c (commit) and a (abort)")
    if args.batches < 1 or args.records % args.batches:
        raise SystemExit(f"--records {args.records} is not a multiple of --batches")
    deadline = time.monotonic() + args.timeout
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    conf = {"segment.bytes": str(args.segment_bytes)} if args.segment_bytes else {}
    fut = admin.create_topics([NewTopic(args.topic, 1, 1, config=conf)],
                              operation_timeout=10)[args.topic]
    try:
        fut.result(timeout=op_timeout(deadline, 15))
    except Exception as e:
        raise CheckFailed(f"create topic {args.topic}: {e}")
    p = Producer({
        "bootstrap.servers": args.bootstrap,
        "transactional.id": args.txn_id,
        # Each flushed part is one batch: flush() sends at once, and nothing goes before it.
        "linger.ms": 1000,
        "transaction.timeout.ms": 30000,
        "message.timeout.ms": 10000,
    })
    topic_partitions(p, args.topic, deadline)
    p.init_transactions(op_timeout(deadline, 15))
    pad = "abcdefghijklmnopqrstuvwxyz0123456789" * (args.value_bytes // 36 + 1)
    per_batch = args.records // args.batches
    errors, offsets, lines = [], [], []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(f"{as_text(msg.key())}: {err}")
        else:
            offsets.append(msg.offset())

    for t, letter in enumerate(args.plan):
        outcome = "commit" if letter == "c" else "abort"
        offsets.clear()
        p.begin_transaction()
        for i in range(args.records):
            key = f"txn-{t:03d}-{i:03d}"
            value = f"{outcome}-{t:03d}-{i:03d}-"
            value += pad[:max(0, args.value_bytes - len(value))]
            while True:
                try:
                    p.produce(args.topic, key=key, value=value, partition=0,
                              on_delivery=on_delivery)
                    break
                except BufferError:
                    p.poll(0.05)
            if (i + 1) % per_batch == 0:
                left = p.flush(op_timeout(deadline, 10))
                if errors or left:
                    raise CheckFailed(f"transaction {t}: {left} records not delivered; "
                                      f"errors: {errors[:3]}")
        if sorted(offsets) != list(range(offsets[0], offsets[0] + args.records)):
            raise CheckFailed(f"transaction {t}: its records got offsets {sorted(offsets)}, "
                              f"not {args.records} consecutive ones")
        if letter == "c":
            p.commit_transaction(op_timeout(deadline, 10))
        else:
            p.abort_transaction(op_timeout(deadline, 10))
        lines.append({"txn": t, "outcome": outcome, "first": min(offsets),
                      "last": max(offsets), "records": args.records})
    # The coordinator writes the markers after it answered EndTxn: wait for the last one.
    end = lines[-1]["last"] + 2  # the last transaction's records, then its marker
    tp = TopicPartition(args.topic, 0)
    while True:
        try:
            res = admin.list_offsets({tp: OffsetSpec.latest()},
                                     isolation_level=IsolationLevel.READ_COMMITTED,
                                     request_timeout=op_timeout(deadline, 5))
            lso = res[tp].result(timeout=op_timeout(deadline, 6)).offset
        except Exception as e:  # KafkaException
            lso = f"unknown ({e})"
        if lso == end:
            break
        if time.monotonic() > deadline:
            raise CheckFailed(f"the read_committed end offset stayed at {lso}; the last "
                              f"marker should end the log at {end}")
        time.sleep(0.1)
    if args.out:
        write_atomically(args.out, "".join(json.dumps(x) + "\n" for x in lines))
    n_abort = args.plan.count("a")
    return (f"{len(args.plan)} transactions of {args.records} records in {args.batches} "
            f"batches ({len(args.plan) - n_abort} committed, {n_abort} aborted); "
            f"read_committed end offset {end}")


# --------------------------------------------------------------------------- kcat output


def parse_kcat_headers(field):
    """kcat's %h: name=value pairs separated by commas; empty when there are none."""
    if field == "":
        return []
    out = []
    for item in field.split(","):
        name, _, value = item.partition("=")
        out.append((name, value))
    return out


def verify_kcat(args):
    with open(args.file, encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    records = []
    for n, line in enumerate(lines, 1):
        if args.format == "kv":
            k, sep, v = line.partition(":")
            if not sep:
                raise CheckFailed(f"line {n}: no ':' in {line!r}")
            records.append(Record(None, None, k, v, None))
        elif args.format == "pkv":
            p, sep, kv = line.partition(" ")
            k, sep2, v = kv.partition(":")
            if not sep or not sep2 or not p.isdigit():
                raise CheckFailed(f"line {n}: not '<partition> <key>:<value>': {line!r}")
            records.append(Record(int(p), None, k, v, None))
        else:
            parts = line.split("\t")
            if len(parts) != 5 or not parts[0].isdigit() or not parts[1].isdigit():
                raise CheckFailed(f"line {n}: not '%p\\t%o\\t%k\\t%s\\t%h': {line!r}")
            records.append(Record(int(parts[0]), int(parts[1]), parts[2], parts[3],
                                  parse_kcat_headers(parts[4])))
    if args.format == "kv" and args.expect_lines:
        # Multiset comparison of the raw lines against what was produced.
        want = Counter(f"key-{i}:value-{i}" for i in range(args.first, args.count))
        got = Counter(lines)
        if want != got:
            missing = list((want - got).elements())[:3]
            unexpected = list((got - want).elements())[:3]
            raise CheckFailed(f"lines differ from the produced ones: {len(lines)} lines; "
                              f"missing e.g. {missing}, unexpected e.g. {unexpected}")
    return verify(records, args.count, args.headers, args.first)


def check_metadata(args):
    with open(args.file, encoding="utf-8") as f:
        text = f.read().strip()
    try:
        md = json.loads(text)
    except ValueError as e:
        raise CheckFailed(f"kcat -L -J printed no JSON ({e}): {text[:200]!r}")
    brokers = md.get("brokers") or []
    names = [b.get("name") for b in brokers]
    if not brokers:
        raise CheckFailed("no brokers listed")
    if args.broker not in names:
        raise CheckFailed(f"broker {args.broker} not listed; brokers: {names}")
    summary = f"brokers {names}"
    if args.topic:
        topics = {t.get("topic"): t for t in md.get("topics") or []}
        t = topics.get(args.topic)
        if t is None:
            raise CheckFailed(f"topic {args.topic} not listed; topics: {sorted(topics)}")
        if t.get("error"):
            raise CheckFailed(f"topic {args.topic} has error {t['error']}")
        parts = t.get("partitions") or []
        ids = sorted(p.get("partition") for p in parts)
        if args.partitions is not None and ids != list(range(args.partitions)):
            raise CheckFailed(f"topic {args.topic}: partitions {ids}, expected "
                              f"0..{args.partitions - 1}")
        ids_known = {b.get("id") for b in brokers}
        for p in parts:
            if p.get("error"):
                raise CheckFailed(f"partition {p.get('partition')}: error {p['error']}")
            if p.get("leader") not in ids_known:
                raise CheckFailed(f"partition {p.get('partition')}: leader {p.get('leader')} "
                                  f"is not a listed broker {sorted(ids_known)}")
        summary += f"; topic {args.topic} with {len(parts)} partitions"
    return summary


# --------------------------------------------------------------------------- main


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(sp, need_client=True):
        if need_client:
            sp.add_argument("--client", required=True, choices=["confluent", "kafka-python"])
            sp.add_argument("-b", "--bootstrap", required=True)
            sp.add_argument("-t", "--topic", required=True)
        sp.add_argument("-n", "--count", type=int, required=True)
        sp.add_argument("--timeout", type=float, default=30.0,
                        help="overall bound in seconds (default 30)")

    sp = sub.add_parser("produce")
    common(sp)
    sp.add_argument("--first", type=int, default=0,
                    help="produce i = FIRST..COUNT-1 (default 0)")
    sp.add_argument("--acks", choices=["all", "0", "1", "-1"])

    sp = sub.add_parser("consume")
    common(sp)
    sp.add_argument("--headers", default="produced")

    sp = sub.add_parser("verify-kcat")
    common(sp, need_client=False)
    sp.add_argument("--file", required=True)
    sp.add_argument("--format", required=True, choices=["kv", "pkv", "rich"])
    sp.add_argument("--headers", default="none")
    sp.add_argument("--first", type=int, default=0,
                    help="expect i = FIRST..COUNT-1 (default 0)")
    sp.add_argument("--expect-lines", action="store_true",
                    help="kv only: compare the raw lines' multiset too")

    sp = sub.add_parser("group-consume")
    common(sp)
    sp.add_argument("-g", "--group", required=True)
    sp.add_argument("--first", type=int, default=0,
                    help="expect i = FIRST..COUNT-1 (default 0)")
    sp.add_argument("--headers", default="produced")
    sp.add_argument("--out", help="write the records read here, as JSON lines")
    sp.add_argument("--peer", action="append", default=[],
                    help="another member's --out file: stop when the records here and "
                         "there add up to the expected count (repeatable)")
    sp.add_argument("--ready-file",
                    help="created once this member's assignment is a non-empty proper "
                         "subset of the topic's --partitions (the group has peers)")
    sp.add_argument("--partitions", type=int)
    sp.add_argument("--linger", type=float, default=1.0,
                    help="seconds to keep polling once the expected count is in")
    sp.add_argument("--idle", type=float, default=5.0,
                    help="alone: stop after this long assigned without records")
    sp.add_argument("--debug", default="",
                    help="librdkafka debug contexts (confluent), e.g. cgrp; "
                         "any value turns on kafka-python's debug logging")

    sp = sub.add_parser("verify-records")
    common(sp, need_client=False)
    sp.add_argument("--file", action="append", required=True)
    sp.add_argument("--first", type=int, default=0)
    sp.add_argument("--headers", default="produced")
    sp.add_argument("--each-nonempty", action="store_true",
                    help="every file must hold at least one record")

    def txn_common(sp):
        sp.add_argument("-b", "--bootstrap", required=True)
        sp.add_argument("--input", required=True, help="the topic to copy from")
        sp.add_argument("--output", required=True, help="the topic to copy to")
        sp.add_argument("-g", "--group", required=True, help="the copier's consumer group")
        sp.add_argument("--timeout", type=float, default=30.0,
                        help="overall bound in seconds (default 30)")

    for name in ("txn-copy", "txn-copy-worker"):
        sp = sub.add_parser(name)
        txn_common(sp)
        sp.add_argument("--txn-id", required=True, help="the producer's transactional.id")
        sp.add_argument("--progress",
                        help="file that holds the number of records committed so far")
        sp.add_argument("--stop-file",
                        help="finish only once this file exists (and all is copied)")
        sp.add_argument("--debug", default="",
                        help="librdkafka debug contexts for the copier's clients, e.g. eos")
        sp.add_argument("--work-ms", type=int, default=0,
                        help="milliseconds each transaction spends between writing its "
                             "records and committing (default 0)")
        if name == "txn-copy":
            sp.add_argument("--crashes", type=int, default=3,
                            help="how many copier processes crash on purpose (default 3)")
            sp.add_argument("--seed", type=int, help="seed of the crash moments")
        else:
            sp.add_argument("--ends", required=True,
                            help="P:OFFSET,...: the input partitions' end offsets")
            sp.add_argument("--crash-at", type=int, default=0,
                            help="crash in this transaction (1-based; 0: never)")

    sp = sub.add_parser("txn-verify")
    txn_common(sp)
    sp.add_argument("-n", "--count", type=int, required=True,
                    help="how many records the input holds")
    sp.add_argument("--min-aborted", type=int, default=1,
                    help="at least this many aborted copies read_uncommitted (default 1)")

    sp = sub.add_parser("txn-produce")
    sp.add_argument("-b", "--bootstrap", required=True)
    sp.add_argument("-t", "--topic", required=True, help="created here, with 1 partition")
    sp.add_argument("--txn-id", required=True, help="the producer's transactional.id")
    sp.add_argument("--plan", required=True,
                    help="one letter per transaction, in order: c commits, a aborts")
    sp.add_argument("--records", type=int, default=8, help="records per transaction")
    sp.add_argument("--batches", type=int, default=1,
                    help="flushed parts (batches) per transaction; divides --records")
    sp.add_argument("--value-bytes", type=int, default=200, help="bytes per record value")
    sp.add_argument("--segment-bytes", type=int, help="the topic's segment.bytes")
    sp.add_argument("--out", help="one JSON line per transaction: outcome, first, last")
    sp.add_argument("--timeout", type=float, default=30.0,
                    help="overall bound in seconds (default 30)")

    sp = sub.add_parser("metadata")
    sp.add_argument("--file", required=True)
    sp.add_argument("--broker", required=True)
    sp.add_argument("--topic")
    sp.add_argument("--partitions", type=int)
    sp.add_argument("--timeout", type=float, default=30.0, help="unused (uniform CLI)")

    args = ap.parse_args(argv)
    # kafka-python reports connection and protocol trouble through logging: show it
    # on stderr, which interop.sh prints as the detail of a failed check.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    if getattr(args, "debug", "") and getattr(args, "client", "") == "kafka-python":
        for name in ("kafka.coordinator", "kafka.consumer"):
            logging.getLogger(name).setLevel(logging.DEBUG)
    if getattr(args, "acks", None) in ("0", "1", "-1"):
        args.acks = int(args.acks) if args.client == "kafka-python" else args.acks
    try:
        if args.cmd == "produce":
            fn = produce_confluent if args.client == "confluent" else produce_kafka_python
            summary = fn(args)
        elif args.cmd == "consume":
            fn = consume_confluent if args.client == "confluent" else consume_kafka_python
            summary = fn(args)
        elif args.cmd == "group-consume":
            summary = group_consume(args)
        elif args.cmd == "verify-records":
            summary = verify_records(args)
        elif args.cmd == "verify-kcat":
            summary = verify_kcat(args)
        elif args.cmd == "txn-copy":
            summary = txn_copy(args)
        elif args.cmd == "txn-copy-worker":
            summary = txn_copy_worker(args)
        elif args.cmd == "txn-verify":
            summary = txn_verify(args)
        elif args.cmd == "txn-produce":
            summary = txn_produce(args)
        else:
            summary = check_metadata(args)
    except CheckFailed as e:
        print(f"FAIL: {e}", flush=True)
        return 1
    except Exception as e:  # a client library error is a failed check, with its reason
        text = str(e)
        name = type(e).__name__
        print(f"FAIL: {text if text.startswith(name) else f'{name}: {text}'}", flush=True)
        return 1
    print(summary, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
