package dev.spate.tests;

import static dev.spate.tests.Kit.check;
import static dev.spate.tests.Kit.eq;

import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.StringSerializer;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/** The Java producer with its defaults (idempotent, acks=all), and with each compression codec. */
final class ProducerChecks {
    private ProducerChecks() {}

    static void register(Map<String, JavaChecks.Check> m) {
        m.put("producer-defaults", ProducerChecks::defaults);
        for (String codec : List.of("lz4", "zstd", "gzip", "snappy")) {
            m.put("producer-compression-" + codec, () -> compression(codec));
        }
    }

    /** Sends the records and checks they read back exactly (partition, offset, key, value, headers, timestamp). */
    static List<RecordMetadata> sendAndReadBack(KafkaProducer<String, String> p, String topic, List<ProducerRecord<String, String>> recs)
            throws Exception {
        List<Future<RecordMetadata>> fs = new ArrayList<>();
        for (ProducerRecord<String, String> r : recs) {
            fs.add(p.send(r));
        }
        p.flush();
        List<RecordMetadata> mds = new ArrayList<>();
        Map<String, ProducerRecord<String, String>> sent = new HashMap<>();
        Map<String, RecordMetadata> where = new HashMap<>();
        for (int i = 0; i < recs.size(); i++) {
            RecordMetadata md = fs.get(i).get(30, TimeUnit.SECONDS);
            mds.add(md);
            String at = md.partition() + "/" + md.offset();
            check(sent.put(at, recs.get(i)) == null, "two records acknowledged at %s", at);
            where.put(at, md);
        }
        List<ConsumerRecord<String, String>> back = Kit.read(topic, null, IsolationLevel.READ_UNCOMMITTED);
        eq(recs.size(), back.size(), "records read back from " + topic);
        for (ConsumerRecord<String, String> r : back) {
            String at = r.partition() + "/" + r.offset();
            ProducerRecord<String, String> s = sent.get(at);
            check(s != null, "read a record at %s that no send was acknowledged at", at);
            eq(s.key(), r.key(), "key at " + at);
            eq(s.value(), r.value(), "value at " + at);
            eq(where.get(at).timestamp(), r.timestamp(), "timestamp at " + at);
            List<String> want = new ArrayList<>();
            for (Header h : s.headers()) {
                want.add(h.key() + "=" + new String(h.value(), StandardCharsets.UTF_8));
            }
            List<String> got = new ArrayList<>();
            for (Header h : r.headers()) {
                got.add(h.key() + "=" + new String(h.value(), StandardCharsets.UTF_8));
            }
            eq(want, got, "headers at " + at);
        }
        return mds;
    }

    static String defaults() throws Exception {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, Kit.bootstrap);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        // What the defaults are in this client (so that the check says what it checked).
        ProducerConfig effective = new ProducerConfig(props);
        eq(true, effective.getBoolean(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG), "default enable.idempotence");
        eq("-1", effective.getString(ProducerConfig.ACKS_CONFIG), "default acks (\"all\", which the client keeps as -1)");
        eq("none", effective.getString(ProducerConfig.COMPRESSION_TYPE_CONFIG), "default compression.type");

        String topic = "prod-defaults";
        Kit.createTopic(topic, 3, null);
        List<ProducerRecord<String, String>> recs = new ArrayList<>();
        for (int i = 0; i < 1000; i++) {
            ProducerRecord<String, String> r = new ProducerRecord<>(topic, "key-" + i, "value-" + i + "-" + "é☃".repeat(i % 5));
            r.headers().add("n", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
            if (i % 3 == 0) {
                r.headers().add("third", new byte[0]);
            }
            recs.add(r);
        }
        List<RecordMetadata> mds;
        try (KafkaProducer<String, String> p = new KafkaProducer<>(props)) {
            mds = sendAndReadBack(p, topic, recs);
        }
        // Order per partition: each key's number grows with its offset.
        Map<Integer, Integer> perPartition = new TreeMap<>();
        Map<Integer, Long> lastOffset = new HashMap<>();
        for (RecordMetadata md : mds) {
            Long prev = lastOffset.put(md.partition(), md.offset());
            check(prev == null || md.offset() > prev, "partition %d: offset %d acknowledged after %d for a later send",
                    md.partition(), md.offset(), prev);
            perPartition.merge(md.partition(), 1, Integer::sum);
        }
        // Idempotence was in use: one producer id on every partition, sequence = records - 1.
        List<TopicPartition> tps = new ArrayList<>();
        for (int p = 0; p < 3; p++) {
            tps.add(new TopicPartition(topic, p));
        }
        Long pid = null;
        for (TopicPartition tp : tps) {
            List<ProducerState> ps = Kit.admin().describeProducers(List.of(tp)).partitionResult(tp).get(30, TimeUnit.SECONDS)
                    .activeProducers();
            if (!perPartition.containsKey(tp.partition())) {
                continue;
            }
            eq(1, ps.size(), "active producers on " + tp);
            ProducerState s = ps.get(0);
            check(s.producerId() >= 0, "producerId %d on %s: the producer was not idempotent", s.producerId(), tp);
            check(pid == null || pid == s.producerId(), "producer ids differ across partitions: %d and %d", pid, s.producerId());
            pid = s.producerId();
            eq(perPartition.get(tp.partition()) - 1, s.lastSequence(), "lastSequence on " + tp);
        }
        return "defaults enable.idempotence=true, acks=all, compression none: 1000 records with headers over 3 partitions "
                + perPartition + " read back exactly, in order; idempotent producer " + pid + " with sequences per partition";
    }

    static String compression(String codec) throws Exception {
        String topic = "prod-" + codec;
        Kit.createTopic(topic, 1, null);
        Map<String, Object> cfg = new HashMap<>();
        cfg.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
        cfg.put(ProducerConfig.LINGER_MS_CONFIG, 20);
        List<ProducerRecord<String, String>> recs = new ArrayList<>();
        long raw = 0;
        for (int i = 0; i < 2000; i++) {
            String v = "record " + i + " " + "spate speaks kafka; ".repeat(10);
            ProducerRecord<String, String> r = new ProducerRecord<>(topic, 0, "k" + i, v);
            r.headers().add("codec", codec.getBytes(StandardCharsets.UTF_8));
            raw += v.length() + ("k" + i).length();
            recs.add(r);
        }
        try (KafkaProducer<String, String> p = Kit.producer(cfg)) {
            List<RecordMetadata> mds = sendAndReadBack(p, topic, recs);
            for (int i = 0; i < mds.size(); i++) {
                eq((long) i, mds.get(i).offset(), "offset of record " + i);
            }
        }
        // Stored as sent: the partition's size is well under the records' raw size.
        int node = AdminChecks.nodeId();
        Map<String, LogDirDescription> dirs = AdminChecks.logDirs(node);
        ReplicaInfo ri = dirs.values().iterator().next().replicaInfos().get(new TopicPartition(topic, 0));
        check(ri != null, "describeLogDirs has no %s-0", topic);
        check(ri.size() > 0 && ri.size() < raw / 3, "%s-0 takes %d bytes on disk for %d raw bytes: not kept compressed?",
                topic, ri.size(), raw);
        return "2000 records with compression.type=" + codec + " read back exactly, in order; " + ri.size() + " bytes stored for "
                + raw + " raw";
    }
}
