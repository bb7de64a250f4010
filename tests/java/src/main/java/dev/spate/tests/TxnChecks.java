package dev.spate.tests;

import static dev.spate.tests.Kit.check;
import static dev.spate.tests.Kit.eq;

import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A transactional producer and read_committed / read_uncommitted consumers. On txn-topic (one
 * partition) one producer commits 5 records, aborts 5, commits 2: offsets 0-4 committed, 5 a
 * commit marker, 6-10 aborted, 11 an abort marker, 12-13 committed, 14 a commit marker.
 */
final class TxnChecks {
    static final String TOPIC = "txn-topic";
    private static boolean written;

    private TxnChecks() {}

    static void register(Map<String, JavaChecks.Check> m) {
        m.put("txn-read-committed", TxnChecks::readCommitted);
        m.put("txn-read-uncommitted", TxnChecks::readUncommitted);
        m.put("txn-last-stable-offset", TxnChecks::lastStableOffset);
        m.put("txn-send-offsets", TxnChecks::sendOffsets);
    }

    static KafkaProducer<String, String> txnProducer(String id) {
        Map<String, Object> cfg = new HashMap<>();
        cfg.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, id);
        KafkaProducer<String, String> p = Kit.producer(cfg);
        p.initTransactions();
        return p;
    }

    static synchronized void ensureWritten() throws Exception {
        if (written) {
            return;
        }
        Kit.createTopic(TOPIC, 1, null);
        try (KafkaProducer<String, String> p = txnProducer("txn-a")) {
            p.beginTransaction();
            for (int i = 0; i < 5; i++) {
                p.send(new ProducerRecord<>(TOPIC, 0, "k" + i, "committed-" + i));
            }
            p.commitTransaction();
            p.beginTransaction();
            for (int i = 0; i < 5; i++) {
                p.send(new ProducerRecord<>(TOPIC, 0, "k" + i, "aborted-" + i));
            }
            p.flush();
            p.abortTransaction();
            p.beginTransaction();
            for (int i = 0; i < 2; i++) {
                p.send(new ProducerRecord<>(TOPIC, 0, "k" + i, "committed2-" + i));
            }
            p.commitTransaction();
        }
        written = true;
    }

    static String describe(List<ConsumerRecord<String, String>> rs) {
        List<String> out = new ArrayList<>();
        for (ConsumerRecord<String, String> r : rs) {
            out.add(r.offset() + ":" + r.value());
        }
        return out.toString();
    }

    static List<String> offsetsAndValues(List<ConsumerRecord<String, String>> rs) {
        List<String> out = new ArrayList<>();
        for (ConsumerRecord<String, String> r : rs) {
            out.add(r.offset() + ":" + r.value());
        }
        return out;
    }

    static final List<String> COMMITTED = List.of("0:committed-0", "1:committed-1", "2:committed-2", "3:committed-3",
            "4:committed-4", "12:committed2-0", "13:committed2-1");
    static final List<String> ALL = List.of("0:committed-0", "1:committed-1", "2:committed-2", "3:committed-3",
            "4:committed-4", "6:aborted-0", "7:aborted-1", "8:aborted-2", "9:aborted-3", "10:aborted-4",
            "12:committed2-0", "13:committed2-1");

    static long offset(OffsetSpec spec, IsolationLevel iso) throws Exception {
        TopicPartition tp = new TopicPartition(TOPIC, 0);
        return Kit.admin().listOffsets(Map.of(tp, spec), new ListOffsetsOptions(iso)).partitionResult(tp)
                .get(30, TimeUnit.SECONDS).offset();
    }

    static String readCommitted() throws Exception {
        ensureWritten();
        eq(15L, offset(OffsetSpec.latest(), IsolationLevel.READ_UNCOMMITTED), "high watermark (12 records, 3 markers)");
        eq(15L, offset(OffsetSpec.latest(), IsolationLevel.READ_COMMITTED), "last stable offset (no open transaction)");
        List<ConsumerRecord<String, String>> rs = Kit.read(TOPIC, null, IsolationLevel.READ_COMMITTED);
        eq(COMMITTED, offsetsAndValues(rs), "records read with read_committed (offset:value)");
        for (ConsumerRecord<String, String> r : rs) {
            check(r.key().equals("k" + r.value().substring(r.value().length() - 1)), "key %s for %s", r.key(), r.value());
        }
        return "the 7 committed records at offsets 0-4 and 12-13, not the 5 aborted; high watermark = LSO = 15";
    }

    static String readUncommitted() throws Exception {
        ensureWritten();
        List<ConsumerRecord<String, String>> rs = Kit.read(TOPIC, null, IsolationLevel.READ_UNCOMMITTED);
        eq(ALL, offsetsAndValues(rs), "records read with read_uncommitted (offset:value)");
        return "all 12 data records (committed and aborted) at offsets 0-4, 6-10, 12-13 (markers at 5, 11, 14 skipped)";
    }

    static String lastStableOffset() throws Exception {
        ensureWritten();
        try (KafkaProducer<String, String> p = txnProducer("txn-open")) {
            long hw0 = offset(OffsetSpec.latest(), IsolationLevel.READ_UNCOMMITTED);
            p.beginTransaction();
            for (int i = 0; i < 3; i++) {
                p.send(new ProducerRecord<>(TOPIC, 0, "k" + i, "open-" + i));
            }
            p.flush();
            long hw = offset(OffsetSpec.latest(), IsolationLevel.READ_UNCOMMITTED);
            long lso = offset(OffsetSpec.latest(), IsolationLevel.READ_COMMITTED);
            eq(hw0 + 3, hw, "high watermark with 3 records of an open transaction");
            eq(hw0, lso, "last stable offset (the open transaction's first offset)");
            List<ConsumerRecord<String, String>> committed = Kit.read(TOPIC, null, IsolationLevel.READ_COMMITTED);
            for (ConsumerRecord<String, String> r : committed) {
                check(!r.value().startsWith("open-"), "read_committed returned %s of the open transaction at %d", r.value(), r.offset());
            }
            List<ConsumerRecord<String, String>> all = Kit.read(TOPIC, null, IsolationLevel.READ_UNCOMMITTED);
            long open = all.stream().filter(r -> r.value().startsWith("open-")).count();
            eq(3L, open, "records of the open transaction read with read_uncommitted");
            p.abortTransaction();
            eq(hw + 1, offset(OffsetSpec.latest(), IsolationLevel.READ_COMMITTED), "LSO after the abort (its marker included)");
            List<ConsumerRecord<String, String>> after = Kit.read(TOPIC, null, IsolationLevel.READ_COMMITTED);
            for (ConsumerRecord<String, String> r : after) {
                check(!r.value().startsWith("open-"), "read_committed returned aborted %s at %d", r.value(), r.offset());
            }
            return "open transaction of 3: high watermark " + hw + ", LSO " + lso + " (read_committed stops there, read_uncommitted sees them); "
                    + "aborted: LSO " + (hw + 1) + ", still unseen by read_committed";
        }
    }

    static String sendOffsets() throws Exception {
        ensureWritten();
        String group = "txn-group";
        Kit.ensureTopic("txn-out", 1);
        TopicPartition in = new TopicPartition(TOPIC, 0);
        Map<String, Object> cfg = new HashMap<>();
        cfg.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        cfg.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cfg.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        try (KafkaConsumer<String, String> c = Kit.consumer(cfg);
             KafkaProducer<String, String> p = txnProducer("txn-transform")) {
            c.subscribe(List.of(TOPIC));
            List<ConsumerRecord<String, String>> got = new ArrayList<>();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (got.size() < 7 && System.nanoTime() < deadline) {
                c.poll(Duration.ofMillis(200)).forEach(got::add);
            }
            check(got.size() >= 7, "the group consumer read %d committed records in 30 s", got.size());
            // Consume-transform-produce: output and input offset in one transaction.
            p.beginTransaction();
            p.send(new ProducerRecord<>("txn-out", 0, "k", "transformed-" + got.get(2).value()));
            p.sendOffsetsToTransaction(Map.of(in, new OffsetAndMetadata(3)), c.groupMetadata());
            p.commitTransaction();
            eq(Map.of(0, 3L), Kit.committed(group, TOPIC), "group offsets after the committed transaction");
            p.beginTransaction();
            p.send(new ProducerRecord<>("txn-out", 0, "k", "never"));
            p.sendOffsetsToTransaction(Map.of(in, new OffsetAndMetadata(9)), c.groupMetadata());
            p.flush();
            p.abortTransaction();
            eq(Map.of(0, 3L), Kit.committed(group, TOPIC), "group offsets after the aborted transaction");
        }
        List<ConsumerRecord<String, String>> out = Kit.read("txn-out", null, IsolationLevel.READ_COMMITTED);
        eq(List.of("transformed-committed-2"), out.stream().map(ConsumerRecord::value).toList(), "txn-out with read_committed");
        return "sendOffsetsToTransaction with the member's group metadata: commit -> group offset 3 and the output visible; "
                + "abort -> offset stays 3, output hidden";
    }
}
