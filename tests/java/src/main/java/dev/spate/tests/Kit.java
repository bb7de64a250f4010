package dev.spate.tests;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.utils.Utils;

import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

/** What the checks share: the broker's address, one Admin, small clients, readers and asserts. */
final class Kit {
    static String bootstrap;
    static int port;
    /** The broker's log.dirs as the script passed it (-Dspate.log.dirs), or null. */
    static String logDirs;
    private static Admin admin;

    private Kit() {}

    static void init(String bootstrapServers) {
        bootstrap = bootstrapServers;
        port = Integer.parseInt(bootstrap.substring(bootstrap.lastIndexOf(':') + 1));
        logDirs = System.getProperty("spate.log.dirs");
    }

    static synchronized Admin admin() {
        if (admin == null) {
            Properties p = new Properties();
            p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            p.put(AdminClientConfig.CLIENT_ID_CONFIG, "spate-java-checks-admin");
            p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30_000);
            p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 15_000);
            admin = Admin.create(p);
        }
        return admin;
    }

    static synchronized void closeAdmin() {
        if (admin != null) {
            admin.close(Duration.ofSeconds(5));
            admin = null;
        }
    }

    static KafkaProducer<String, String> producer(Map<String, Object> extra) {
        Map<String, Object> p = new HashMap<>();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.putAll(extra);
        return new KafkaProducer<>(p);
    }

    static KafkaConsumer<String, String> consumer(Map<String, Object> extra) {
        Map<String, Object> p = new HashMap<>();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.putAll(extra);
        return new KafkaConsumer<>(p);
    }

    /** Creates the topic; fails if it exists. */
    static void createTopic(String name, int partitions, Map<String, String> configs) throws Exception {
        NewTopic t = new NewTopic(name, partitions, (short) 1);
        if (configs != null && !configs.isEmpty()) {
            t.configs(configs);
        }
        admin().createTopics(List.of(t)).all().get(30, TimeUnit.SECONDS);
    }

    /** Creates the topic unless it exists (for fixtures that several checks share). */
    static void ensureTopic(String name, int partitions) throws Exception {
        try {
            createTopic(name, partitions, null);
        } catch (ExecutionException e) {
            if (!(e.getCause() instanceof TopicExistsException)) {
                throw e;
            }
        }
    }

    static int partitionCount(String topic) throws Exception {
        return admin().describeTopics(List.of(topic)).allTopicNames().get(30, TimeUnit.SECONDS)
                .get(topic).partitions().size();
    }

    /** The partition the Java producer's default partitioner gives a keyed record. */
    static int partitionForKey(String key, int partitions) {
        return Utils.toPositive(Utils.murmur2(key.getBytes(StandardCharsets.UTF_8))) % partitions;
    }

    /**
     * Every record of the topic from {@code from} (partition to offset; missing means the
     * beginning) to the end offset the consumer sees at the start (the high watermark, or the
     * last stable offset with read_committed), in log order per partition.
     */
    static List<ConsumerRecord<String, String>> read(String topic, Map<Integer, Long> from, IsolationLevel iso)
            throws Exception {
        int n = partitionCount(topic);
        List<TopicPartition> tps = new ArrayList<>();
        for (int p = 0; p < n; p++) {
            tps.add(new TopicPartition(topic, p));
        }
        Map<String, Object> cfg = new HashMap<>();
        cfg.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, iso.toString().toLowerCase(Locale.ROOT));
        cfg.put(ConsumerConfig.CLIENT_ID_CONFIG, "spate-java-checks-reader");
        List<ConsumerRecord<String, String>> out = new ArrayList<>();
        try (KafkaConsumer<String, String> c = consumer(cfg)) {
            c.assign(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps, Duration.ofSeconds(20));
            for (TopicPartition tp : tps) {
                Long start = from == null ? null : from.get(tp.partition());
                if (start == null) {
                    c.seekToBeginning(List.of(tp));
                } else {
                    c.seek(tp, start);
                }
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
            while (true) {
                boolean done = true;
                for (TopicPartition tp : tps) {
                    if (c.position(tp, Duration.ofSeconds(10)) < end.get(tp)) {
                        done = false;
                    }
                }
                if (done) {
                    break;
                }
                if (System.nanoTime() > deadline) {
                    Map<Integer, Long> pos = new TreeMap<>();
                    for (TopicPartition tp : tps) {
                        pos.put(tp.partition(), c.position(tp));
                    }
                    throw new Failure("reading " + topic + " timed out after 20 s at positions " + pos
                            + ", end offsets " + byPartition(end) + ", " + out.size() + " records read");
                }
                ConsumerRecords<String, String> rs = c.poll(Duration.ofMillis(200));
                for (ConsumerRecord<String, String> r : rs) {
                    if (r.offset() < end.get(new TopicPartition(r.topic(), r.partition()))) {
                        out.add(r);
                    }
                }
            }
        }
        out.sort((a, b) -> a.partition() != b.partition()
                ? Integer.compare(a.partition(), b.partition()) : Long.compare(a.offset(), b.offset()));
        return out;
    }

    /** The group's committed offsets for the topic, partition to offset. */
    static Map<Integer, Long> committed(String group, String topic) throws Exception {
        Map<TopicPartition, OffsetAndMetadata> all = admin().listConsumerGroupOffsets(group)
                .partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
        Map<Integer, Long> out = new TreeMap<>();
        for (Map.Entry<TopicPartition, OffsetAndMetadata> e : all.entrySet()) {
            if (e.getKey().topic().equals(topic) && e.getValue() != null) {
                out.put(e.getKey().partition(), e.getValue().offset());
            }
        }
        return out;
    }

    static Map<Integer, Long> endOffsets(String topic) throws Exception {
        return offsets(topic, OffsetSpec.latest());
    }

    static Map<Integer, Long> offsets(String topic, OffsetSpec spec) throws Exception {
        int n = partitionCount(topic);
        Map<TopicPartition, OffsetSpec> q = new HashMap<>();
        for (int p = 0; p < n; p++) {
            q.put(new TopicPartition(topic, p), spec);
        }
        Map<Integer, Long> out = new TreeMap<>();
        admin().listOffsets(q).all().get(30, TimeUnit.SECONDS)
                .forEach((tp, info) -> out.put(tp.partition(), info.offset()));
        return out;
    }

    static <V> Map<Integer, V> byPartition(Map<TopicPartition, V> m) {
        Map<Integer, V> out = new TreeMap<>();
        m.forEach((tp, v) -> out.put(tp.partition(), v));
        return out;
    }

    static void check(boolean cond, String fmt, Object... args) {
        if (!cond) {
            throw new Failure(String.format(Locale.ROOT, fmt, args));
        }
    }

    static void eq(Object expected, Object actual, String what) {
        if (expected == null ? actual != null : !expected.equals(actual)) {
            throw new Failure(what + ": expected " + expected + ", got " + actual);
        }
    }

    interface Condition {
        boolean holds() throws Exception;
    }

    /** Waits up to ms for the condition (checked every 100 ms); fails with what. */
    static void waitFor(String what, long ms, Condition c) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(ms);
        while (!c.holds()) {
            if (System.nanoTime() > deadline) {
                throw new Failure("timed out after " + ms + " ms waiting for " + what);
            }
            Thread.sleep(100);
        }
    }

    /** A check's failure: its message is the FAIL line's reason. */
    static final class Failure extends RuntimeException {
        Failure(String message) {
            super(message);
        }
    }

    /**
     * System.out and System.err go through this, so the seeds' printing can be read back: each
     * complete line is kept (stdout only kept; stderr kept and also passed on to the real stderr).
     */
    static final class Capture {
        private final List<String> lines = new ArrayList<>();

        PrintStream stream(String tag, OutputStream passOn) {
            return new PrintStream(new LineSink(tag, passOn), true, StandardCharsets.UTF_8);
        }

        synchronized int mark() {
            return lines.size();
        }

        /** Lines since the mark, each prefixed "out: " or "err: ". */
        synchronized List<String> since(int mark) {
            return new ArrayList<>(lines.subList(Math.min(mark, lines.size()), lines.size()));
        }

        /** Lines of one stream ("out" or "err") since the mark, without the prefix. */
        synchronized List<String> since(int mark, String tag) {
            List<String> out = new ArrayList<>();
            for (String l : since(mark)) {
                if (l.startsWith(tag + ": ")) {
                    out.add(l.substring(tag.length() + 2));
                }
            }
            return out;
        }

        private synchronized void add(String line) {
            lines.add(line);
        }

        private final class LineSink extends OutputStream {
            private final String tag;
            private final OutputStream passOn;
            private final ByteArrayOutputStream buf = new ByteArrayOutputStream();

            LineSink(String tag, OutputStream passOn) {
                this.tag = tag;
                this.passOn = passOn;
            }

            @Override
            public synchronized void write(byte[] b, int off, int len) {
                if (passOn != null) {
                    try {
                        passOn.write(b, off, len);
                    } catch (java.io.IOException ignored) {
                        // the real stream is gone; keep capturing
                    }
                }
                for (int i = off; i < off + len; i++) {
                    take(b[i]);
                }
            }

            @Override
            public synchronized void write(int b) {
                write(new byte[] {(byte) b}, 0, 1);
            }

            private void take(int b) {
                if (b == '\n') {
                    String s = buf.toString(StandardCharsets.UTF_8);
                    if (s.endsWith("\r")) {
                        s = s.substring(0, s.length() - 1);
                    }
                    add(tag + ": " + s);
                    buf.reset();
                } else {
                    buf.write(b);
                }
            }

            @Override
            public synchronized void flush() throws java.io.IOException {
                if (passOn != null) {
                    passOn.flush();
                }
            }
        }
    }
}
