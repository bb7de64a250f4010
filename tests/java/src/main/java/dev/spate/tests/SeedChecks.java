package dev.spate.tests;

import static dev.spate.tests.Kit.check;
import static dev.spate.tests.Kit.eq;

import dev.spate.tests.seeds.Stop;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.IsolationLevel;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The seeds' Java examples (tests/java/src/main/java/dev/spate/tests/seeds/), run as written,
 * and their effect checked: what each producer wrote is read back whole (count, keys, values,
 * partition of each key, order and offsets per partition), what each consumer printed is exactly
 * the log from where its group stood, in order, and the group's committed offsets (read back
 * with Admin.listConsumerGroupOffsets) are the log end once it stops.
 *
 * The seeds' topics are made beforehand with 3 partitions (auto creation would give one, and
 * then "in order per partition" would say little); everything else is the seeds'.
 */
final class SeedChecks {
    static final int PARTITIONS = 3;
    static final Pattern CONSUMER_000 = Pattern.compile("offset = (\\d+), key = (.*), value = (.*)");
    static final Pattern CONSUMER_004 = Pattern.compile("key (.*)\u2014(.*)");

    private SeedChecks() {}

    interface SeedMain {
        void run(String[] args) throws Exception;
    }

    static void register(Map<String, JavaChecks.Check> m) {
        m.put("seed-producer-no-callback", () -> producerSeed("first",
                dev.spate.tests.seeds.s000.nocallback.CustomProducer::main, 100, null));
        m.put("seed-producer-callback", () -> producerSeed("first-callback",
                dev.spate.tests.seeds.s000.callback.CustomProducer::main, 100, "success->"));
        m.put("seed-producer-sync", () -> producerSeed("first-sync",
                dev.spate.tests.seeds.s000.sync.CustomProducer::main, 100, null));
        m.put("seed-my-producer", () -> producerSeed("replicated-topic-test",
                a -> dev.spate.tests.seeds.s004.producer.MyProducer.main(a), 10, "success"));
        m.put("seed-consumer-auto-commit", () -> consumerSeed("first-consumed", "test",
                dev.spate.tests.seeds.s000.autocommit.CustomConsumer::main, CONSUMER_000, false));
        m.put("seed-consumer-commit-sync", () -> consumerSeed("first-consumed", "test",
                dev.spate.tests.seeds.s000.commitsync.CustomComsumer::main, CONSUMER_000, false));
        m.put("seed-consumer-commit-async", () -> consumerSeed("first-consumed", "test",
                dev.spate.tests.seeds.s000.commitasync.CustomConsumer::main, CONSUMER_000, false));
        m.put("seed-my-consumer", () -> consumerSeed("replicated-topic-test", "bigdata",
                dev.spate.tests.seeds.s004.consumer.MyConsumer::main, CONSUMER_004, true));
    }

    /** Lines of stderr that say a send or a commit failed (the seeds print these). */
    private static List<String> failureLines(int mark) {
        List<String> bad = new ArrayList<>();
        for (String l : JavaChecks.CAPTURE.since(mark, "err")) {
            if (l.startsWith("Commit failed for") || l.matches("^(org\\.apache\\.kafka|java)\\.[\\w.$]*(Exception|Error)\\b.*")) {
                bad.add(l);
            }
        }
        return bad;
    }

    /**
     * Runs a seed producer on a fresh 3-partition topic and checks the topic then holds exactly
     * keys 0..count-1 (value = key), each once, on the default partitioner's partition, in
     * order and at consecutive offsets from 0 per partition; with a callback, that it printed
     * one success line per record (and, for "success->OFFSET", the offsets the log has).
     */
    static String producerSeed(String topic, SeedMain seed, int count, String successPrefix) throws Exception {
        Kit.createTopic(topic, PARTITIONS, null);
        int mark = JavaChecks.CAPTURE.mark();
        long t0 = System.nanoTime();
        seed.run(new String[] {Kit.bootstrap, topic});
        long ms = (System.nanoTime() - t0) / 1_000_000;
        List<String> bad = failureLines(mark);
        check(bad.isEmpty(), "the seed printed a failure: %s", bad.isEmpty() ? "" : bad.get(0));

        List<ConsumerRecord<String, String>> log = Kit.read(topic, null, IsolationLevel.READ_UNCOMMITTED);
        String layout = checkSeedRecords(topic, log, 0, count);

        String printed = "";
        if (successPrefix != null) {
            List<String> out = JavaChecks.CAPTURE.since(mark, "out");
            List<Long> printedOffsets = new ArrayList<>();
            for (String l : out) {
                check(l.startsWith(successPrefix), "the callback printed %s", l);
                if (successPrefix.endsWith("->")) {
                    printedOffsets.add(Long.parseLong(l.substring(successPrefix.length())));
                }
            }
            eq(count, out.size(), "callback lines \"" + successPrefix + "...\"");
            if (!printedOffsets.isEmpty()) {
                List<Long> logOffsets = new ArrayList<>();
                for (ConsumerRecord<String, String> r : log) {
                    logOffsets.add(r.offset());
                }
                printedOffsets.sort(null);
                logOffsets.sort(null);
                eq(logOffsets, printedOffsets, "offsets the callback printed (sorted) vs the log's");
            }
            printed = ", " + out.size() + " callback lines" + (printedOffsets.isEmpty() ? "" : " with the log's offsets");
        }
        return count + " records in " + ms + " ms; " + layout + printed;
    }

    /**
     * The log of a seed topic: keys firstKey..firstKey+count-1 once each (as a seed producer
     * writes them), value = key, on partitionForKey, in order at consecutive offsets.
     */
    static String checkSeedRecords(String topic, List<ConsumerRecord<String, String>> log, int firstKey, int count) {
        eq(count, log.size(), "records in " + topic);
        Map<Integer, List<ConsumerRecord<String, String>>> byP = new TreeMap<>();
        boolean[] seen = new boolean[count];
        for (ConsumerRecord<String, String> r : log) {
            eq(r.key(), r.value(), "value of the record with key " + r.key() + " at " + r.partition() + "/" + r.offset());
            int k = Integer.parseInt(r.key()) - firstKey;
            check(k >= 0 && k < count && !seen[k], "key %s unexpected or twice (at %d/%d)", r.key(), r.partition(), r.offset());
            seen[k] = true;
            eq(Kit.partitionForKey(r.key(), PARTITIONS), r.partition(), "partition of key " + r.key());
            byP.computeIfAbsent(r.partition(), x -> new ArrayList<>()).add(r);
        }
        Map<Integer, Integer> sizes = new TreeMap<>();
        for (Map.Entry<Integer, List<ConsumerRecord<String, String>>> e : byP.entrySet()) {
            List<ConsumerRecord<String, String>> rs = e.getValue();
            for (int i = 0; i < rs.size(); i++) {
                eq((long) i, rs.get(i).offset(), "offset of record " + i + " of partition " + e.getKey());
                if (i > 0) {
                    check(Integer.parseInt(rs.get(i).key()) > Integer.parseInt(rs.get(i - 1).key()),
                            "partition %d out of order: key %s after %s", e.getKey(), rs.get(i).key(), rs.get(i - 1).key());
                }
            }
            sizes.put(e.getKey(), rs.size());
        }
        return "records per partition " + sizes + ", each key once, in order, value = key, on the default partitioner's partition";
    }

    /**
     * Runs a seed consumer (in a thread: it polls until Stop) on the topic, waits until it is
     * positioned (its group has an offset for every partition), produces 100 records with the
     * seed's CustomProducer (without callback), and checks that the consumer printed exactly
     * the records from where the group stood to the log end, in log order per partition, once
     * each, with keys and values; then stops it and checks the committed offsets are the log end.
     */
    static String consumerSeed(String topic, String group, SeedMain seed, Pattern line, boolean earliest)
            throws Exception {
        Kit.ensureTopic(topic, PARTITIONS);
        Map<Integer, Long> before = Kit.committed(group, topic);
        int mark = JavaChecks.CAPTURE.mark();
        AtomicReference<Throwable> died = new AtomicReference<>();
        Stop.clear();
        Thread th = new Thread(() -> {
            try {
                seed.run(new String[] {Kit.bootstrap, topic});
            } catch (Throwable e) {
                died.set(e);
            }
        }, "seed-consumer-" + group);
        th.setDaemon(true);
        th.start();
        long t0 = System.nanoTime();
        try {
            Map<Integer, Long> start = new TreeMap<>(before);
            if (before.size() == PARTITIONS) {
                // the group resumes where it committed
            } else if (earliest) {
                // auto.offset.reset=earliest: partitions without an offset are read from their start
                Map<Integer, Long> logStart = Kit.offsets(topic, org.apache.kafka.clients.admin.OffsetSpec.earliest());
                for (int p = 0; p < PARTITIONS; p++) {
                    start.putIfAbsent(p, logStart.get(p));
                }
            } else {
                // auto.offset.reset=latest (seed 000's default) with no offsets yet: the consumer
                // commits its position (the log end) once it has one; records produced before
                // that would be skipped, so wait for it.
                Kit.waitFor("the consumer's group " + group + " to commit a position on every partition of " + topic,
                        30_000, () -> died.get() == null && Kit.committed(group, topic).size() == PARTITIONS
                                || died.get() != null);
                check(died.get() == null, "the seed consumer died: %s", JavaChecks.describe(died.get()));
                start = Kit.committed(group, topic);
            }
            long joinedMs = (System.nanoTime() - t0) / 1_000_000;

            dev.spate.tests.seeds.s000.nocallback.CustomProducer.main(new String[] {Kit.bootstrap, topic});
            List<ConsumerRecord<String, String>> expected = Kit.read(topic, start, IsolationLevel.READ_UNCOMMITTED);
            check(expected.size() >= 100, "only %d records after the group's offsets %s", expected.size(), start);

            Kit.waitFor(expected.size() + " records printed by the seed consumer", 30_000,
                    () -> died.get() != null || parse(JavaChecks.CAPTURE.since(mark, "out"), line).size() >= expected.size());
            check(died.get() == null, "the seed consumer died: %s", JavaChecks.describe(died.get()));
            Thread.sleep(1500); // room for a duplicate to show, and for auto commit's interval
            Stop.request();
            th.join(30_000);
            check(!th.isAlive(), "the seed consumer did not stop within 30 s of being asked");
            check(died.get() == null, "the seed consumer died: %s", JavaChecks.describe(died.get()));

            List<String> bad = failureLines(mark);
            check(bad.isEmpty(), "the seed printed a failure: %s", bad.isEmpty() ? "" : bad.get(0));
            List<String[]> printed = parse(JavaChecks.CAPTURE.since(mark, "out"), line);
            compare(expected, printed, line == CONSUMER_000);

            Map<Integer, Long> end = Kit.endOffsets(topic);
            Map<Integer, Long> after = Kit.committed(group, topic);
            eq(end, after, "group " + group + "'s committed offsets (listConsumerGroupOffsets) vs the log end");
            return "joined and positioned in " + joinedMs + " ms; printed the " + printed.size()
                    + " records from offsets " + start + " to " + end + " in order, once each; committed " + after;
        } finally {
            Stop.request();
            th.join(30_000);
        }
    }

    private static List<String[]> parse(List<String> out, Pattern line) {
        List<String[]> rs = new ArrayList<>();
        for (String l : out) {
            Matcher m = line.matcher(l);
            if (m.matches()) {
                String[] g = new String[m.groupCount()];
                for (int i = 0; i < g.length; i++) {
                    g[i] = m.group(i + 1);
                }
                rs.add(g);
            } else {
                throw new Kit.Failure("the seed consumer printed an unexpected line: " + l);
            }
        }
        return rs;
    }

    /**
     * Printed lines vs the log: per partition (the key's partition), the printed sequence must be
     * the log's, in order: (offset, key, value) for seed 000, (key, value) for seed 004.
     */
    private static void compare(List<ConsumerRecord<String, String>> expected, List<String[]> printed, boolean withOffset) {
        Map<Integer, List<String>> want = new HashMap<>();
        for (ConsumerRecord<String, String> r : expected) {
            eq(Kit.partitionForKey(r.key(), PARTITIONS), r.partition(), "partition of key " + r.key() + " in the log");
            want.computeIfAbsent(r.partition(), x -> new ArrayList<>())
                    .add((withOffset ? r.offset() + "," : "") + r.key() + "," + r.value());
        }
        Map<Integer, List<String>> got = new HashMap<>();
        for (String[] g : printed) {
            String key = withOffset ? g[1] : g[0];
            got.computeIfAbsent(Kit.partitionForKey(key, PARTITIONS), x -> new ArrayList<>()).add(String.join(",", g));
        }
        for (int p = 0; p < PARTITIONS; p++) {
            List<String> w = want.getOrDefault(p, List.of());
            List<String> g = got.getOrDefault(p, List.of());
            if (!w.equals(g)) {
                int i = 0;
                while (i < Math.min(w.size(), g.size()) && w.get(i).equals(g.get(i))) {
                    i++;
                }
                throw new Kit.Failure("partition " + p + ": printed " + g.size() + " records, the log has "
                        + w.size() + "; first difference at #" + i + ": printed "
                        + (i < g.size() ? g.get(i) : "nothing") + ", log " + (i < w.size() ? w.get(i) : "nothing")
                        + (withOffset ? " (offset,key,value)" : " (key,value)"));
            }
        }
    }
}
