package dev.spate.tests;

import static dev.spate.tests.Kit.admin;
import static dev.spate.tests.Kit.check;
import static dev.spate.tests.Kit.eq;

import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConfigEntry.ConfigSource;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.CreateTopicsResult;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.DescribeConfigsOptions;
import org.apache.kafka.clients.admin.DescribeReplicaLogDirsResult.ReplicaLogDirInfo;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsSpec;
import org.apache.kafka.clients.admin.ListConsumerGroupsOptions;
import org.apache.kafka.clients.admin.ListOffsetsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.ListTopicsOptions;
import org.apache.kafka.clients.admin.LogDirDescription;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.ProducerState;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.ReplicaInfo;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.admin.TopicListing;
import org.apache.kafka.clients.admin.TransactionDescription;
import org.apache.kafka.clients.admin.TransactionListing;
import org.apache.kafka.clients.admin.TransactionState;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.IsolationLevel;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicCollection;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.TopicPartitionReplica;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.GroupIdNotFoundException;
import org.apache.kafka.common.errors.GroupNotEmptyException;
import org.apache.kafka.common.errors.InvalidConfigurationException;
import org.apache.kafka.common.errors.InvalidPartitionsException;
import org.apache.kafka.common.errors.OffsetOutOfRangeException;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.errors.UnknownMemberIdException;
import org.apache.kafka.common.errors.UnknownTopicOrPartitionException;
import org.apache.kafka.common.message.AlterConfigsResponseData;
import org.apache.kafka.common.message.ApiVersionsResponseData.ApiVersion;
import org.apache.kafka.common.protocol.ApiKeys;
import org.apache.kafka.common.protocol.Errors;
import org.apache.kafka.common.requests.AbstractRequest;
import org.apache.kafka.common.requests.AbstractResponse;
import org.apache.kafka.common.requests.AlterConfigsRequest;
import org.apache.kafka.common.requests.AlterConfigsResponse;
import org.apache.kafka.common.requests.ApiVersionsRequest;
import org.apache.kafka.common.requests.ApiVersionsResponse;
import org.apache.kafka.common.requests.RequestHeader;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/** The Java AdminClient's calls, each a check whose answer is verified (and acted on where it changes something). */
final class AdminChecks {
    static final String COMPACT = "adm-compact";
    static final String PLAIN = "adm-plain";
    static final String GROUPS_TOPIC = "adm-groups";
    static final String GROUP = "adm-group";
    static final String OFFSETS_TOPIC = "adm-offsets";
    static final long BASE_TS = 1_700_000_000_000L;
    static final String TXN_TOPIC = "adm-txn-topic";
    static final String TXN_ID = "adm-txn";

    private AdminChecks() {}

    static void register(Map<String, JavaChecks.Check> m) {
        m.put("admin-create-topics", AdminChecks::createTopics);
        m.put("admin-list-topics", AdminChecks::listTopics);
        m.put("admin-describe-topics", AdminChecks::describeTopics);
        m.put("admin-describe-topics-by-id", AdminChecks::describeTopicsById);
        m.put("admin-create-partitions", AdminChecks::createPartitions);
        m.put("admin-delete-topics", AdminChecks::deleteTopics);
        m.put("admin-describe-configs-topic", AdminChecks::describeConfigsTopic);
        m.put("admin-describe-configs-broker", AdminChecks::describeConfigsBroker);
        m.put("admin-incremental-alter-configs-topic", AdminChecks::incrementalAlterConfigsTopic);
        m.put("admin-incremental-alter-configs-broker", AdminChecks::incrementalAlterConfigsBroker);
        m.put("admin-alter-configs", AdminChecks::alterConfigs);
        m.put("admin-list-consumer-groups", AdminChecks::listConsumerGroups);
        m.put("admin-describe-consumer-groups", AdminChecks::describeConsumerGroups);
        m.put("admin-list-consumer-group-offsets", AdminChecks::listConsumerGroupOffsets);
        m.put("admin-alter-consumer-group-offsets", AdminChecks::alterConsumerGroupOffsets);
        m.put("admin-delete-consumer-group-offsets", AdminChecks::deleteConsumerGroupOffsets);
        m.put("admin-delete-consumer-groups", AdminChecks::deleteConsumerGroups);
        m.put("admin-list-offsets-earliest-latest", AdminChecks::listOffsetsEarliestLatest);
        m.put("admin-list-offsets-max-timestamp", AdminChecks::listOffsetsMaxTimestamp);
        m.put("admin-list-offsets-for-timestamp", AdminChecks::listOffsetsForTimestamp);
        m.put("admin-delete-records", AdminChecks::deleteRecords);
        m.put("admin-describe-cluster", AdminChecks::describeCluster);
        m.put("admin-describe-log-dirs", AdminChecks::describeLogDirs);
        m.put("admin-describe-replica-log-dirs", AdminChecks::describeReplicaLogDirs);
        m.put("admin-describe-producers", AdminChecks::describeProducers);
        m.put("admin-list-transactions", AdminChecks::listTransactions);
        m.put("admin-describe-transactions", AdminChecks::describeTransactions);
    }

    // ---- helpers ----

    /** Runs the call and expects it to fail with the given exception (as the cause of the future's failure). */
    static String expectError(Class<? extends Throwable> want, String what, Kit.Condition call) throws Exception {
        try {
            call.holds();
        } catch (ExecutionException e) {
            Throwable c = e.getCause();
            check(want.isInstance(c), "%s: expected %s, got %s", what, want.getSimpleName(), JavaChecks.describe(c));
            return want.getSimpleName();
        }
        throw new Kit.Failure(what + ": expected " + want.getSimpleName() + ", but it succeeded");
    }

    static int nodeId() throws Exception {
        Collection<Node> nodes = admin().describeCluster().nodes().get(30, TimeUnit.SECONDS);
        check(nodes.size() == 1, "describeCluster: expected one node, got %s", nodes);
        return nodes.iterator().next().id();
    }

    static Map<String, ConfigEntry> topicConfig(String topic) throws Exception {
        return config(new ConfigResource(ConfigResource.Type.TOPIC, topic));
    }

    static Map<String, ConfigEntry> config(ConfigResource r) throws Exception {
        Config c = admin().describeConfigs(List.of(r), new DescribeConfigsOptions().includeSynonyms(true))
                .all().get(30, TimeUnit.SECONDS).get(r);
        Map<String, ConfigEntry> out = new TreeMap<>();
        for (ConfigEntry e : c.entries()) {
            out.put(e.name(), e);
        }
        return out;
    }

    static void expectEntry(Map<String, ConfigEntry> cfg, String name, String value, ConfigSource source) {
        ConfigEntry e = cfg.get(name);
        check(e != null, "%s is not among the %d entries described", name, cfg.size());
        eq(value, e.value(), name + "'s value");
        if (source != null) {
            eq(source, e.source(), name + "'s source (value " + e.value() + ")");
        }
    }

    /** adm-compact (2 partitions, compact, retention.ms=3600000, segment.bytes=1048576) and adm-plain (1). */
    static void ensureTopics() throws Exception {
        Set<String> names = admin().listTopics().names().get(30, TimeUnit.SECONDS);
        if (!names.contains(COMPACT)) {
            Kit.createTopic(COMPACT, 2, Map.of("cleanup.policy", "compact", "retention.ms", "3600000",
                    "segment.bytes", "1048576"));
        }
        if (!names.contains(PLAIN)) {
            Kit.createTopic(PLAIN, 1, null);
        }
    }

    // ---- topics ----

    static String createTopics() throws Exception {
        CreateTopicsResult r = admin().createTopics(List.of(
                new NewTopic(COMPACT, 2, (short) 1).configs(Map.of("cleanup.policy", "compact",
                        "retention.ms", "3600000", "segment.bytes", "1048576")),
                new NewTopic(PLAIN, 1, (short) 1)));
        r.all().get(30, TimeUnit.SECONDS);
        eq(2, r.numPartitions(COMPACT).get(), "numPartitions of " + COMPACT);
        eq(1, r.replicationFactor(COMPACT).get(), "replicationFactor of " + COMPACT);
        Uuid id = r.topicId(COMPACT).get();
        check(id != null && !id.equals(Uuid.ZERO_UUID), "topicId of %s is %s", COMPACT, id);
        Config cfg = r.config(COMPACT).get();
        check(cfg != null && cfg.get("cleanup.policy") != null, "CreateTopics returned no configs for %s", COMPACT);
        eq("compact", cfg.get("cleanup.policy").value(), "cleanup.policy in CreateTopics' answer");
        eq("3600000", cfg.get("retention.ms").value(), "retention.ms in CreateTopics' answer");

        String exists = expectError(TopicExistsException.class, "creating " + PLAIN + " again",
                () -> admin().createTopics(List.of(new NewTopic(PLAIN, 1, (short) 1))).all().get(30, TimeUnit.SECONDS) != null);
        String invalid = expectError(InvalidConfigurationException.class, "cleanup.policy=bogus",
                () -> admin().createTopics(List.of(new NewTopic("adm-bad-config", 1, (short) 1)
                        .configs(Map.of("cleanup.policy", "bogus")))).all().get(30, TimeUnit.SECONDS) != null);
        admin().createTopics(List.of(new NewTopic("adm-validate-only", 3, (short) 1)),
                new CreateTopicsOptions().validateOnly(true)).all().get(30, TimeUnit.SECONDS);
        Set<String> names = admin().listTopics().names().get(30, TimeUnit.SECONDS);
        check(!names.contains("adm-validate-only"), "validateOnly created adm-validate-only");
        check(!names.contains("adm-bad-config"), "adm-bad-config was created despite its invalid config");
        return COMPACT + " (2 partitions, id " + id + ", configs echoed) and " + PLAIN + " created; again -> "
                + exists + "; bad cleanup.policy -> " + invalid + "; validateOnly created nothing";
    }

    static String listTopics() throws Exception {
        ensureTopics();
        Map<String, TopicListing> listings = new HashMap<>();
        for (TopicListing l : admin().listTopics().listings().get(30, TimeUnit.SECONDS)) {
            listings.put(l.name(), l);
        }
        check(listings.containsKey(COMPACT) && listings.containsKey(PLAIN), "listTopics lacks %s or %s: %s",
                COMPACT, PLAIN, listings.keySet());
        for (TopicListing l : listings.values()) {
            check(!l.isInternal(), "listTopics() (without internal) listed internal topic %s", l.name());
        }
        Uuid described = admin().describeTopics(List.of(COMPACT)).allTopicNames().get(30, TimeUnit.SECONDS)
                .get(COMPACT).topicId();
        eq(described, listings.get(COMPACT).topicId(), "listTopics' topicId vs describeTopics'");
        List<String> internal = new ArrayList<>();
        for (TopicListing l : admin().listTopics(new ListTopicsOptions().listInternal(true)).listings().get(30, TimeUnit.SECONDS)) {
            if (l.isInternal()) {
                internal.add(l.name());
            }
        }
        return listings.size() + " topics including " + COMPACT + " and " + PLAIN + " with their ids; internal topics: " + internal;
    }

    static String describeTopics() throws Exception {
        ensureTopics();
        int node = nodeId();
        TopicDescription d = admin().describeTopics(List.of(COMPACT)).allTopicNames().get(30, TimeUnit.SECONDS).get(COMPACT);
        eq(COMPACT, d.name(), "name");
        check(!d.isInternal(), "%s described as internal", COMPACT);
        eq(2, d.partitions().size(), "partitions of " + COMPACT);
        for (int i = 0; i < 2; i++) {
            TopicPartitionInfo p = d.partitions().get(i);
            eq(i, p.partition(), "partition index");
            check(p.leader() != null && p.leader().id() == node, "partition %d leader %s, not node %d", i, p.leader(), node);
            eq(1, p.replicas().size(), "replicas of partition " + i);
            eq(node, p.replicas().get(0).id(), "replica of partition " + i);
            eq(1, p.isr().size(), "isr of partition " + i);
        }
        check(d.topicId() != null && !d.topicId().equals(Uuid.ZERO_UUID), "topicId %s", d.topicId());
        String unknown = expectError(UnknownTopicOrPartitionException.class, "describing adm-no-such-topic",
                () -> admin().describeTopics(List.of("adm-no-such-topic")).allTopicNames().get(30, TimeUnit.SECONDS) != null);
        return COMPACT + ": 2 partitions led by node " + node + ", replicas=isr=[" + node + "], id " + d.topicId()
                + "; unknown topic -> " + unknown;
    }

    static String describeTopicsById() throws Exception {
        ensureTopics();
        TopicDescription d = admin().describeTopics(List.of(COMPACT)).allTopicNames().get(30, TimeUnit.SECONDS).get(COMPACT);
        TopicDescription byId = admin().describeTopics(TopicCollection.ofTopicIds(List.of(d.topicId())))
                .allTopicIds().get(30, TimeUnit.SECONDS).get(d.topicId());
        eq(COMPACT, byId.name(), "describeTopics by id: name");
        eq(d.topicId(), byId.topicId(), "describeTopics by id: id");
        eq(2, byId.partitions().size(), "describeTopics by id: partitions");
        Uuid unknownId = Uuid.randomUuid();
        String unknown = expectError(org.apache.kafka.common.errors.UnknownTopicIdException.class, "describing an unknown topic id",
                () -> admin().describeTopics(TopicCollection.ofTopicIds(List.of(unknownId))).allTopicIds()
                        .get(30, TimeUnit.SECONDS) != null);
        return COMPACT + " described by its id " + d.topicId() + " (Metadata v12 by topic id); unknown id -> " + unknown;
    }

    static String createPartitions() throws Exception {
        ensureTopics();
        admin().createPartitions(Map.of(PLAIN, NewPartitions.increaseTo(3))).all().get(30, TimeUnit.SECONDS);
        eq(3, Kit.partitionCount(PLAIN), "partitions of " + PLAIN + " after increaseTo(3)");
        try (KafkaProducer<String, String> p = Kit.producer(Map.of())) {
            RecordMetadata md = p.send(new ProducerRecord<>(PLAIN, 2, "k", "to-the-new-partition")).get(30, TimeUnit.SECONDS);
            eq(2, md.partition(), "partition written");
        }
        List<ConsumerRecord<String, String>> rs = Kit.read(PLAIN, null, IsolationLevel.READ_UNCOMMITTED);
        check(rs.size() == 1 && rs.get(0).partition() == 2 && rs.get(0).value().equals("to-the-new-partition"),
                "read back from %s: %s", PLAIN, rs);
        String shrink = expectError(InvalidPartitionsException.class, "increaseTo(2) on 3 partitions",
                () -> admin().createPartitions(Map.of(PLAIN, NewPartitions.increaseTo(2))).all().get(30, TimeUnit.SECONDS) != null);
        return PLAIN + " 1 -> 3 partitions, a record written to and read from partition 2; 3 -> 2 gives " + shrink;
    }

    static String deleteTopics() throws Exception {
        Kit.createTopic("adm-doomed-1", 1, null);
        Kit.createTopic("adm-doomed-2", 1, null);
        try (KafkaProducer<String, String> p = Kit.producer(Map.of())) {
            p.send(new ProducerRecord<>("adm-doomed-1", "k", "v")).get(30, TimeUnit.SECONDS);
            p.send(new ProducerRecord<>("adm-doomed-2", "k", "v")).get(30, TimeUnit.SECONDS);
        }
        Uuid id1 = admin().describeTopics(List.of("adm-doomed-1")).allTopicNames().get().get("adm-doomed-1").topicId();
        Uuid id2 = admin().describeTopics(List.of("adm-doomed-2")).allTopicNames().get().get("adm-doomed-2").topicId();
        admin().deleteTopics(TopicCollection.ofTopicNames(List.of("adm-doomed-1"))).all().get(30, TimeUnit.SECONDS);
        admin().deleteTopics(TopicCollection.ofTopicIds(List.of(id2))).all().get(30, TimeUnit.SECONDS);
        Kit.waitFor("listTopics to drop adm-doomed-1 and adm-doomed-2", 15_000, () -> {
            Set<String> names = admin().listTopics().names().get(30, TimeUnit.SECONDS);
            return !names.contains("adm-doomed-1") && !names.contains("adm-doomed-2");
        });
        String gone = expectError(UnknownTopicOrPartitionException.class, "describing the deleted adm-doomed-1",
                () -> admin().describeTopics(List.of("adm-doomed-1")).allTopicNames().get(30, TimeUnit.SECONDS) != null);
        String never = expectError(UnknownTopicOrPartitionException.class, "deleting adm-never-was",
                () -> admin().deleteTopics(List.of("adm-never-was")).all().get(30, TimeUnit.SECONDS) != null);
        // A topic made again under the name is new and empty.
        Kit.createTopic("adm-doomed-1", 1, null);
        Uuid again = admin().describeTopics(List.of("adm-doomed-1")).allTopicNames().get().get("adm-doomed-1").topicId();
        check(!again.equals(id1), "adm-doomed-1 made again has the deleted topic's id %s", id1);
        eq(Map.of(0, 0L), Kit.endOffsets("adm-doomed-1"), "end offsets of adm-doomed-1 made again");
        return "deleted by name and by id, gone from listTopics; describe after -> " + gone
                + "; unknown -> " + never + "; re-created: new id, empty";
    }

    // ---- configs ----

    /**
     * Kafka 4.4.0's topic configs with their defaults and types, as LogConfig in
     * kafka-storage-4.4.0.jar defines them (LogConfig.configNames() and configDefCopy(), less the
     * internal internal.segment.bytes): what DescribeConfigs lists for a topic.
     */
    static final String[][] KAFKA_TOPIC_CONFIGS = {
        {"cleanup.policy", "delete", "LIST"},
        {"compression.gzip.level", "-1", "INT"},
        {"compression.lz4.level", "9", "INT"},
        {"compression.type", "producer", "STRING"},
        {"compression.zstd.level", "3", "INT"},
        {"delete.retention.ms", "86400000", "LONG"},
        {"errors.deadletterqueue.group.enable", "false", "BOOLEAN"},
        {"file.delete.delay.ms", "60000", "LONG"},
        {"flush.messages", "9223372036854775807", "LONG"},
        {"flush.ms", "9223372036854775807", "LONG"},
        {"follower.replication.throttled.replicas", "", "LIST"},
        {"index.interval.bytes", "4096", "INT"},
        {"leader.replication.throttled.replicas", "", "LIST"},
        {"local.retention.bytes", "-2", "LONG"},
        {"local.retention.ms", "-2", "LONG"},
        {"max.compaction.lag.ms", "9223372036854775807", "LONG"},
        {"max.decompressed.message.bytes", "2147483639", "INT"},
        {"max.message.bytes", "1048588", "INT"},
        {"message.timestamp.after.max.ms", "3600000", "LONG"},
        {"message.timestamp.before.max.ms", "9223372036854775807", "LONG"},
        {"message.timestamp.type", "CreateTime", "STRING"},
        {"min.cleanable.dirty.ratio", "0.5", "DOUBLE"},
        {"min.compaction.lag.ms", "0", "LONG"},
        {"min.insync.replicas", "1", "INT"},
        {"preallocate", "false", "BOOLEAN"},
        {"remote.copy.lag.bytes", "-1", "LONG"},
        {"remote.copy.lag.ms", "0", "LONG"},
        {"remote.log.copy.disable", "false", "BOOLEAN"},
        {"remote.log.delete.on.disable", "false", "BOOLEAN"},
        {"remote.storage.enable", "false", "BOOLEAN"},
        {"retention.bytes", "-1", "LONG"},
        {"retention.ms", "604800000", "LONG"},
        {"segment.bytes", "1073741824", "INT"},
        {"segment.index.bytes", "10485760", "INT"},
        {"segment.jitter.ms", "0", "LONG"},
        {"segment.ms", "604800000", "LONG"},
        {"unclean.leader.election.enable", "false", "BOOLEAN"},
    };

    /** Compares one entry; adds what differs to problems. */
    static void compareEntry(Map<String, ConfigEntry> cfg, String name, String value, ConfigSource source, String type,
            List<String> missing, List<String> wrong) {
        ConfigEntry e = cfg.get(name);
        if (e == null) {
            missing.add(name);
            return;
        }
        List<String> d = new ArrayList<>();
        if (value != null && !value.equals(e.value())) {
            d.add("value " + e.value() + " (Kafka: " + value + ")");
        }
        if (source != null && source != e.source()) {
            d.add("source " + e.source() + " (Kafka: " + source + ")");
        }
        if (type != null && !type.equals(e.type().name())) {
            d.add("type " + e.type() + " (Kafka: " + type + ")");
        }
        if (!d.isEmpty()) {
            wrong.add(name + ": " + String.join(", ", d));
        }
    }

    static void reportConfigProblems(String what, int entries, List<String> missing, List<String> wrong) {
        if (missing.isEmpty() && wrong.isEmpty()) {
            return;
        }
        throw new Kit.Failure(what + " (" + entries + " entries): " + missing.size() + " missing " + missing + "; "
                + wrong.size() + " differ " + wrong);
    }

    static String describeConfigsTopic() throws Exception {
        ensureTopics();
        Map<String, ConfigEntry> cfg = topicConfig(COMPACT);
        List<String> missing = new ArrayList<>();
        List<String> wrong = new ArrayList<>();
        Map<String, String> set = Map.of("cleanup.policy", "compact", "retention.ms", "3600000", "segment.bytes", "1048576");
        for (String[] k : KAFKA_TOPIC_CONFIGS) {
            boolean isSet = set.containsKey(k[0]);
            compareEntry(cfg, k[0], isSet ? set.get(k[0]) : k[1],
                    isSet ? ConfigSource.DYNAMIC_TOPIC_CONFIG : ConfigSource.DEFAULT_CONFIG, k[2], missing, wrong);
        }
        ConfigEntry cp = cfg.get("cleanup.policy");
        if (cp != null && cp.isDefault()) {
            wrong.add("cleanup.policy: isDefault true though set");
        }
        ConfigEntry ret = cfg.get("retention.ms");
        if (ret != null) {
            List<ConfigEntry.ConfigSynonym> syn = ret.synonyms();
            // Kafka: the topic's own value, then the broker's default (log.retention.hours=168).
            boolean first = !syn.isEmpty() && syn.get(0).name().equals("retention.ms")
                    && syn.get(0).source() == ConfigSource.DYNAMIC_TOPIC_CONFIG;
            boolean brokerDefault = syn.stream().anyMatch(x -> x.name().equals("log.retention.hours") && "168".equals(x.value())
                    && x.source() == ConfigSource.DEFAULT_CONFIG);
            if (!first || !brokerDefault) {
                wrong.add("retention.ms synonyms " + syn + " (Kafka: retention.ms=3600000 DYNAMIC_TOPIC_CONFIG, ..., log.retention.hours=168 DEFAULT_CONFIG)");
            }
        }
        for (String name : cfg.keySet()) {
            boolean known = false;
            for (String[] k : KAFKA_TOPIC_CONFIGS) {
                known |= k[0].equals(name);
            }
            if (!known) {
                wrong.add(name + ": not a Kafka 4.4.0 topic config");
            }
        }
        reportConfigProblems("describeConfigs of " + COMPACT + " vs Kafka 4.4.0's topic configs", cfg.size(), missing, wrong);
        return cfg.size() + " entries = Kafka 4.4.0's topic configs; the 3 set DYNAMIC_TOPIC_CONFIG, the rest Kafka's defaults "
                + "(DEFAULT_CONFIG) and types; synonyms as Kafka gives them";
    }

    static String describeConfigsBroker() throws Exception {
        int node = nodeId();
        Map<String, ConfigEntry> cfg = config(new ConfigResource(ConfigResource.Type.BROKER, String.valueOf(node)));
        List<String> missing = new ArrayList<>();
        List<String> wrong = new ArrayList<>();
        // Defaults and types as kafka.server.KafkaConfig (kafka_2.13-4.4.0.jar) defines them; not set when starting.
        String[][] defaults = {
            {"num.partitions", "1", "INT"},
            {"message.max.bytes", "1048588", "INT"},
            {"log.retention.hours", "168", "INT"},
            {"auto.create.topics.enable", "true", "BOOLEAN"},
            {"compression.type", "producer", "STRING"},
            {"log.segment.bytes", "1073741824", "INT"},
            {"offsets.topic.num.partitions", "50", "INT"},
            {"group.initial.rebalance.delay.ms", "3000", "INT"},
            {"transaction.max.timeout.ms", "900000", "INT"},
            {"log.cleanup.policy", "delete", "LIST"},
            {"default.replication.factor", "1", "INT"},
            {"min.insync.replicas", "1", "INT"},
        };
        for (String[] k : defaults) {
            compareEntry(cfg, k[0], k[1], ConfigSource.DEFAULT_CONFIG, k[2], missing, wrong);
        }
        // Set when starting (--override): STATIC_BROKER_CONFIG.
        compareEntry(cfg, "log.dirs", Kit.logDirs, ConfigSource.STATIC_BROKER_CONFIG, "LIST", missing, wrong);
        compareEntry(cfg, "listeners", "PLAINTEXT://127.0.0.1:" + Kit.port, ConfigSource.STATIC_BROKER_CONFIG, "LIST", missing, wrong);
        reportConfigProblems("describeConfigs of broker " + node + " vs Kafka 4.4.0's", cfg.size(), missing, wrong);
        return cfg.size() + " entries for broker " + node + "; defaults as Kafka's (DEFAULT_CONFIG, with types), log.dirs and listeners "
                + "as started (STATIC_BROKER_CONFIG)";
    }

    static String incrementalAlterConfigsTopic() throws Exception {
        ensureTopics();
        ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, COMPACT);
        admin().incrementalAlterConfigs(Map.of(r, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET),
                new AlterConfigOp(new ConfigEntry("max.message.bytes", "2000000"), AlterConfigOp.OpType.SET),
                new AlterConfigOp(new ConfigEntry("cleanup.policy", "delete"), AlterConfigOp.OpType.APPEND))))
                .all().get(30, TimeUnit.SECONDS);
        Map<String, ConfigEntry> cfg = topicConfig(COMPACT);
        expectEntry(cfg, "retention.ms", "7200000", ConfigSource.DYNAMIC_TOPIC_CONFIG);
        expectEntry(cfg, "max.message.bytes", "2000000", ConfigSource.DYNAMIC_TOPIC_CONFIG);
        expectEntry(cfg, "cleanup.policy", "compact,delete", ConfigSource.DYNAMIC_TOPIC_CONFIG);

        admin().incrementalAlterConfigs(Map.of(r, List.of(
                new AlterConfigOp(new ConfigEntry("max.message.bytes", ""), AlterConfigOp.OpType.DELETE),
                new AlterConfigOp(new ConfigEntry("cleanup.policy", "delete"), AlterConfigOp.OpType.SUBTRACT))))
                .all().get(30, TimeUnit.SECONDS);
        cfg = topicConfig(COMPACT);
        expectEntry(cfg, "max.message.bytes", "1048588", ConfigSource.DEFAULT_CONFIG);
        expectEntry(cfg, "cleanup.policy", "compact", ConfigSource.DYNAMIC_TOPIC_CONFIG);
        expectEntry(cfg, "retention.ms", "7200000", ConfigSource.DYNAMIC_TOPIC_CONFIG);

        admin().incrementalAlterConfigs(Map.of(r, List.of(
                new AlterConfigOp(new ConfigEntry("segment.bytes", "2097152"), AlterConfigOp.OpType.SET))),
                new org.apache.kafka.clients.admin.AlterConfigsOptions().validateOnly(true)).all().get(30, TimeUnit.SECONDS);
        expectEntry(topicConfig(COMPACT), "segment.bytes", "1048576", ConfigSource.DYNAMIC_TOPIC_CONFIG);

        String bad = expectError(InvalidConfigurationException.class, "retention.ms=abc",
                () -> admin().incrementalAlterConfigs(Map.of(r, List.of(
                        new AlterConfigOp(new ConfigEntry("retention.ms", "abc"), AlterConfigOp.OpType.SET))))
                        .all().get(30, TimeUnit.SECONDS) != null);
        return "SET/APPEND then DELETE/SUBTRACT shown by describeConfigs (retention.ms=7200000, cleanup.policy compact,delete -> compact, "
                + "max.message.bytes back to 1048588 DEFAULT_CONFIG); validateOnly changed nothing; retention.ms=abc -> " + bad;
    }

    static String incrementalAlterConfigsBroker() throws Exception {
        ensureTopics();
        int node = nodeId();
        ConfigResource clusterDefault = new ConfigResource(ConfigResource.Type.BROKER, "");
        admin().incrementalAlterConfigs(Map.of(clusterDefault, List.of(
                new AlterConfigOp(new ConfigEntry("log.retention.ms", "1209600000"), AlterConfigOp.OpType.SET))))
                .all().get(30, TimeUnit.SECONDS);
        try {
            Map<String, ConfigEntry> b = config(new ConfigResource(ConfigResource.Type.BROKER, String.valueOf(node)));
            expectEntry(b, "log.retention.ms", "1209600000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG);
            // A topic without its own retention.ms now has the cluster default.
            expectEntry(topicConfig(PLAIN), "retention.ms", "1209600000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG);
        } finally {
            admin().incrementalAlterConfigs(Map.of(clusterDefault, List.of(
                    new AlterConfigOp(new ConfigEntry("log.retention.ms", ""), AlterConfigOp.OpType.DELETE))))
                    .all().get(30, TimeUnit.SECONDS);
        }
        Map<String, ConfigEntry> b = config(new ConfigResource(ConfigResource.Type.BROKER, String.valueOf(node)));
        ConfigEntry e = b.get("log.retention.ms");
        check(e == null || e.source() != ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG,
                "log.retention.ms still %s after DELETE", e);
        return "cluster-default log.retention.ms=1209600000 shown on broker " + node
                + " and on " + PLAIN + "'s retention.ms (DYNAMIC_DEFAULT_BROKER_CONFIG), then deleted";
    }

    /**
     * Admin.alterConfigs (AlterConfigs, key 33) is gone from kafka-clients 4.x's Admin (only
     * incrementalAlterConfigs is left), but older clients and tools still send it: this sends
     * it with the 4.4.0 client's own request classes over a plain socket, at the highest
     * version both sides know (ApiVersions first).
     */
    static String alterConfigs() throws Exception {
        ensureTopics();
        short version;
        String advertised;
        try (Socket s = new Socket("127.0.0.1", Kit.port)) {
            s.setSoTimeout(15_000);
            ApiVersionsResponse av = (ApiVersionsResponse) roundTrip(s, ApiKeys.API_VERSIONS, (short) 3,
                    new ApiVersionsRequest.Builder().build((short) 3), 1);
            ApiVersion v = av.data().apiKeys().find(ApiKeys.ALTER_CONFIGS.id);
            short ours = ApiKeys.ALTER_CONFIGS.latestVersion();
            if (v == null) {
                advertised = "ApiVersions does not list AlterConfigs (33)";
                version = ours;
            } else {
                advertised = "ApiVersions lists AlterConfigs " + v.minVersion() + "-" + v.maxVersion();
                version = (short) Math.min(ours, v.maxVersion());
            }
        }
        ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, PLAIN);
        Map<ConfigResource, AlterConfigsRequest.Config> first = Map.of(r, new AlterConfigsRequest.Config(List.of(
                new AlterConfigsRequest.ConfigEntry("retention.ms", "86400000"),
                new AlterConfigsRequest.ConfigEntry("cleanup.policy", "delete"))));
        sendAlterConfigs(version, first, advertised);
        Map<String, ConfigEntry> cfg = topicConfig(PLAIN);
        expectEntry(cfg, "retention.ms", "86400000", ConfigSource.DYNAMIC_TOPIC_CONFIG);
        expectEntry(cfg, "cleanup.policy", "delete", ConfigSource.DYNAMIC_TOPIC_CONFIG);
        // AlterConfigs replaces the resource's whole set: retention.ms goes back to its default.
        sendAlterConfigs(version, Map.of(r, new AlterConfigsRequest.Config(List.of(
                new AlterConfigsRequest.ConfigEntry("segment.bytes", "2097152")))), advertised);
        cfg = topicConfig(PLAIN);
        expectEntry(cfg, "segment.bytes", "2097152", ConfigSource.DYNAMIC_TOPIC_CONFIG);
        ConfigEntry ret = cfg.get("retention.ms");
        check(ret != null && ret.source() != ConfigSource.DYNAMIC_TOPIC_CONFIG,
                "retention.ms is still %s after an AlterConfigs without it (AlterConfigs replaces the set)", ret);
        return "AlterConfigs v" + version + " (" + advertised + ") set retention.ms and cleanup.policy on " + PLAIN
                + ", then replaced the set with segment.bytes only (retention.ms back to " + ret.value() + ", " + ret.source() + ")";
    }

    private static void sendAlterConfigs(short version, Map<ConfigResource, AlterConfigsRequest.Config> configs, String advertised)
            throws Exception {
        AbstractResponse resp;
        try (Socket s = new Socket("127.0.0.1", Kit.port)) {
            s.setSoTimeout(15_000);
            resp = roundTrip(s, ApiKeys.ALTER_CONFIGS, version,
                    new AlterConfigsRequest.Builder(configs, false).build(version), 2);
        } catch (EOFException e) {
            throw new Kit.Failure("AlterConfigs v" + version + ": the broker closed the connection without an answer ("
                    + advertised + ")");
        } catch (java.net.SocketTimeoutException e) {
            throw new Kit.Failure("AlterConfigs v" + version + ": no answer in 15 s (" + advertised + ")");
        }
        for (AlterConfigsResponseData.AlterConfigsResourceResponse rr : ((AlterConfigsResponse) resp).data().responses()) {
            Errors err = Errors.forCode(rr.errorCode());
            check(err == Errors.NONE, "AlterConfigs v%d for %s: %s (%s)", version, rr.resourceName(), err, rr.errorMessage());
        }
    }

    /** One request and its answer on a plain socket, framed as Kafka frames them. */
    private static AbstractResponse roundTrip(Socket s, ApiKeys key, short version, AbstractRequest req, int correlation)
            throws Exception {
        RequestHeader h = new RequestHeader(key, version, "spate-java-checks-raw", correlation);
        ByteBuffer buf = req.serializeWithHeader(h);
        DataOutputStream out = new DataOutputStream(s.getOutputStream());
        out.writeInt(buf.remaining());
        out.write(buf.array(), buf.arrayOffset() + buf.position(), buf.remaining());
        out.flush();
        DataInputStream in = new DataInputStream(s.getInputStream());
        int len = in.readInt();
        byte[] body = new byte[len];
        in.readFully(body);
        return AbstractResponse.parseResponse(ByteBuffer.wrap(body), h);
    }

    // ---- consumer groups ----

    private static KafkaConsumer<String, String> member;
    private static final int GROUP_RECORDS_PER_PARTITION = 5;

    /** The group adm-group with one live member (client.id adm-member) that consumed and committed 5+5 records. */
    static synchronized void ensureLiveMember() throws Exception {
        if (member != null) {
            return;
        }
        Kit.ensureTopic(GROUPS_TOPIC, 2);
        if (Kit.endOffsets(GROUPS_TOPIC).values().stream().mapToLong(Long::longValue).sum() == 0) {
            try (KafkaProducer<String, String> p = Kit.producer(Map.of())) {
                for (int i = 0; i < GROUP_RECORDS_PER_PARTITION * 2; i++) {
                    p.send(new ProducerRecord<>(GROUPS_TOPIC, i % 2, "k" + i, "v" + i));
                }
                p.flush();
            }
        }
        Map<String, Object> cfg = new HashMap<>();
        cfg.put(ConsumerConfig.GROUP_ID_CONFIG, GROUP);
        cfg.put(ConsumerConfig.CLIENT_ID_CONFIG, "adm-member");
        cfg.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        KafkaConsumer<String, String> c = Kit.consumer(cfg);
        c.subscribe(List.of(GROUPS_TOPIC));
        int got = 0;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (got < GROUP_RECORDS_PER_PARTITION * 2 && System.nanoTime() < deadline) {
            got += c.poll(Duration.ofMillis(200)).count();
        }
        if (got != GROUP_RECORDS_PER_PARTITION * 2) {
            c.close(Duration.ofSeconds(5));
            throw new Kit.Failure("the group member consumed " + got + " of " + GROUP_RECORDS_PER_PARTITION * 2 + " records in 30 s");
        }
        c.commitSync(Duration.ofSeconds(15));
        member = c;
    }

    static synchronized void closeMember() {
        if (member != null) {
            member.close(Duration.ofSeconds(10));
            member = null;
        }
    }

    static String listConsumerGroups() throws Exception {
        ensureLiveMember();
        Map<String, ConsumerGroupListing> listed = new HashMap<>();
        for (ConsumerGroupListing l : admin().listConsumerGroups().all().get(30, TimeUnit.SECONDS)) {
            listed.put(l.groupId(), l);
        }
        ConsumerGroupListing l = listed.get(GROUP);
        check(l != null, "listConsumerGroups lacks %s: %s", GROUP, listed.keySet());
        eq(java.util.Optional.of(GroupState.STABLE), l.groupState(), "state of " + GROUP);
        check(!l.isSimpleConsumerGroup(), "%s listed as a simple group", GROUP);
        check(l.type().isEmpty() || l.type().get() == GroupType.CLASSIC, "type of %s: %s", GROUP, l.type());
        Set<String> empty = new HashSet<>();
        for (ConsumerGroupListing e : admin().listConsumerGroups(new ListConsumerGroupsOptions()
                .inGroupStates(Set.of(GroupState.EMPTY))).all().get(30, TimeUnit.SECONDS)) {
            empty.add(e.groupId());
        }
        check(!empty.contains(GROUP), "%s listed among the EMPTY groups", GROUP);
        GroupListing g = null;
        for (GroupListing x : admin().listGroups().all().get(30, TimeUnit.SECONDS)) {
            if (x.groupId().equals(GROUP)) {
                g = x;
            }
        }
        check(g != null, "listGroups lacks %s", GROUP);
        eq("consumer", g.protocol(), "listGroups: protocol type of " + GROUP);
        return GROUP + " listed STABLE (" + listed.size() + " consumer groups), not among EMPTY; listGroups: protocol consumer, type "
                + g.type().map(Object::toString).orElse("(none)");
    }

    static String describeConsumerGroups() throws Exception {
        ensureLiveMember();
        int node = nodeId();
        ConsumerGroupDescription d = admin().describeConsumerGroups(List.of(GROUP)).describedGroups().get(GROUP)
                .get(30, TimeUnit.SECONDS);
        eq(GroupState.STABLE, d.groupState(), "state");
        eq(GroupType.CLASSIC, d.type(), "type");
        eq("range", d.partitionAssignor(), "partition assignor (the first of the 4.x defaults, range and cooperative-sticky)");
        eq(node, d.coordinator().id(), "coordinator");
        eq(1, d.members().size(), "members");
        MemberDescription m = d.members().iterator().next();
        eq("adm-member", m.clientId(), "member clientId");
        check(m.consumerId().startsWith("adm-member-"), "member id %s", m.consumerId());
        check(m.host().contains("127.0.0.1"), "member host %s", m.host());
        eq(Set.of(new TopicPartition(GROUPS_TOPIC, 0), new TopicPartition(GROUPS_TOPIC, 1)),
                m.assignment().topicPartitions(), "member assignment");
        String unknown;
        try {
            ConsumerGroupDescription none = admin().describeConsumerGroups(List.of("adm-no-such-group")).describedGroups()
                    .get("adm-no-such-group").get(30, TimeUnit.SECONDS);
            check(none.groupState() == GroupState.DEAD && none.members().isEmpty(), "unknown group described as %s", none);
            unknown = "DEAD";
        } catch (ExecutionException e) {
            check(e.getCause() instanceof GroupIdNotFoundException, "unknown group: %s", JavaChecks.describe(e.getCause()));
            unknown = "GroupIdNotFoundException";
        }
        return GROUP + ": STABLE, CLASSIC, range, coordinator " + node + ", one member " + m.consumerId() + " from " + m.host()
                + " with both partitions; unknown group -> " + unknown;
    }

    static String listConsumerGroupOffsets() throws Exception {
        ensureLiveMember();
        TopicPartition p0 = new TopicPartition(GROUPS_TOPIC, 0);
        TopicPartition p1 = new TopicPartition(GROUPS_TOPIC, 1);
        Map<TopicPartition, OffsetAndMetadata> all = admin().listConsumerGroupOffsets(GROUP).partitionsToOffsetAndMetadata()
                .get(30, TimeUnit.SECONDS);
        eq(Map.of(p0, 5L, p1, 5L), offsetsOf(all), "committed offsets of " + GROUP);
        Map<String, ListConsumerGroupOffsetsSpec> specs = new HashMap<>();
        specs.put(GROUP, new ListConsumerGroupOffsetsSpec().topicPartitions(List.of(p1)));
        specs.put("adm-group-without-offsets", new ListConsumerGroupOffsetsSpec());
        Map<String, Map<TopicPartition, OffsetAndMetadata>> both = admin().listConsumerGroupOffsets(specs).all()
                .get(30, TimeUnit.SECONDS);
        eq(Map.of(p1, 5L), offsetsOf(both.get(GROUP)), "committed offsets of " + GROUP + " for partition 1 only");
        eq(Map.of(), offsetsOf(both.get("adm-group-without-offsets")), "offsets of a group that never committed");
        return "{" + p0 + "=5, " + p1 + "=5} as the member committed; one partition asked -> one; a group without offsets -> none";
    }

    static Map<TopicPartition, Long> offsetsOf(Map<TopicPartition, OffsetAndMetadata> m) {
        Map<TopicPartition, Long> out = new HashMap<>();
        if (m != null) {
            m.forEach((tp, om) -> {
                if (om != null) {
                    out.put(tp, om.offset());
                }
            });
        }
        return out;
    }

    static String alterConsumerGroupOffsets() throws Exception {
        ensureLiveMember();
        TopicPartition p0 = new TopicPartition(GROUPS_TOPIC, 0);
        TopicPartition p1 = new TopicPartition(GROUPS_TOPIC, 1);
        String busy = expectError(UnknownMemberIdException.class, "altering the offsets of a group with a live member",
                () -> admin().alterConsumerGroupOffsets(GROUP, Map.of(p0, new OffsetAndMetadata(1))).all()
                        .get(30, TimeUnit.SECONDS) != null);
        closeMember();
        admin().alterConsumerGroupOffsets(GROUP, Map.of(p0, new OffsetAndMetadata(2, "m0"), p1, new OffsetAndMetadata(4, "m1")))
                .all().get(30, TimeUnit.SECONDS);
        Map<TopicPartition, OffsetAndMetadata> back = admin().listConsumerGroupOffsets(GROUP).partitionsToOffsetAndMetadata()
                .get(30, TimeUnit.SECONDS);
        eq(Map.of(p0, 2L, p1, 4L), offsetsOf(back), "offsets after alterConsumerGroupOffsets");
        eq("m0", back.get(p0).metadata(), "metadata of partition 0's offset");
        eq("m1", back.get(p1).metadata(), "metadata of partition 1's offset");
        // A member of the group resumes there: offsets 2..4 of partition 0 and 4 of partition 1.
        Map<String, Object> cfg = new HashMap<>();
        cfg.put(ConsumerConfig.GROUP_ID_CONFIG, GROUP);
        cfg.put(ConsumerConfig.CLIENT_ID_CONFIG, "adm-member-2");
        List<String> got = new ArrayList<>();
        try (KafkaConsumer<String, String> c = Kit.consumer(cfg)) {
            c.subscribe(List.of(GROUPS_TOPIC));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (got.size() < 4 && System.nanoTime() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(200))) {
                    got.add(r.partition() + "/" + r.offset());
                }
            }
        }
        got.sort(null);
        eq(List.of("0/2", "0/3", "0/4", "1/4"), got, "what a new member of the group read");
        return "refused while a member lives (" + busy + "); then set to {0: 2 \"m0\", 1: 4 \"m1\"}, read back, and a new member resumed there";
    }

    static String deleteConsumerGroupOffsets() throws Exception {
        TopicPartition p0 = new TopicPartition(GROUPS_TOPIC, 0);
        TopicPartition p1 = new TopicPartition(GROUPS_TOPIC, 1);
        closeMember();
        if (offsetsOf(admin().listConsumerGroupOffsets(GROUP).partitionsToOffsetAndMetadata().get()).size() < 2) {
            Kit.ensureTopic(GROUPS_TOPIC, 2);
            admin().alterConsumerGroupOffsets(GROUP, Map.of(p0, new OffsetAndMetadata(2), p1, new OffsetAndMetadata(4)))
                    .all().get(30, TimeUnit.SECONDS);
        }
        Map<TopicPartition, Long> before = offsetsOf(admin().listConsumerGroupOffsets(GROUP).partitionsToOffsetAndMetadata()
                .get(30, TimeUnit.SECONDS));
        admin().deleteConsumerGroupOffsets(GROUP, Set.of(p0)).all().get(30, TimeUnit.SECONDS);
        Map<TopicPartition, Long> after = offsetsOf(admin().listConsumerGroupOffsets(GROUP).partitionsToOffsetAndMetadata()
                .get(30, TimeUnit.SECONDS));
        Map<TopicPartition, Long> want = new HashMap<>(before);
        want.remove(p0);
        eq(want, after, "offsets after deleting partition 0's");
        return "partition 0's offset deleted, partition 1's kept: " + before + " -> " + after;
    }

    static String deleteConsumerGroups() throws Exception {
        closeMember();
        Kit.ensureTopic(GROUPS_TOPIC, 2);
        TopicPartition p1 = new TopicPartition(GROUPS_TOPIC, 1);
        if (offsetsOf(admin().listConsumerGroupOffsets(GROUP).partitionsToOffsetAndMetadata().get()).isEmpty()) {
            admin().alterConsumerGroupOffsets(GROUP, Map.of(p1, new OffsetAndMetadata(4))).all().get(30, TimeUnit.SECONDS);
        }
        // A group with a live member is refused.
        Map<String, Object> cfg = new HashMap<>();
        cfg.put(ConsumerConfig.GROUP_ID_CONFIG, "adm-group-live");
        cfg.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        String notEmpty;
        try (KafkaConsumer<String, String> c = Kit.consumer(cfg)) {
            c.subscribe(List.of(GROUPS_TOPIC));
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (c.assignment().isEmpty() && System.nanoTime() < deadline) {
                c.poll(Duration.ofMillis(200));
            }
            check(!c.assignment().isEmpty(), "adm-group-live's member got no assignment in 30 s");
            notEmpty = expectError(GroupNotEmptyException.class, "deleting adm-group-live with a live member",
                    () -> admin().deleteConsumerGroups(List.of("adm-group-live")).all().get(30, TimeUnit.SECONDS) != null);
        }
        admin().deleteConsumerGroups(List.of(GROUP)).all().get(30, TimeUnit.SECONDS);
        Set<String> listed = new HashSet<>();
        for (ConsumerGroupListing l : admin().listConsumerGroups().all().get(30, TimeUnit.SECONDS)) {
            listed.add(l.groupId());
        }
        check(!listed.contains(GROUP), "%s still listed after deleteConsumerGroups", GROUP);
        eq(Map.of(), offsetsOf(admin().listConsumerGroupOffsets(GROUP).partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS)),
                "offsets of the deleted group");
        String again = expectError(GroupIdNotFoundException.class, "deleting " + GROUP + " again",
                () -> admin().deleteConsumerGroups(List.of(GROUP)).all().get(30, TimeUnit.SECONDS) != null);
        return "live group refused (" + notEmpty + "); " + GROUP + " deleted: not listed, no offsets; again -> " + again;
    }

    // ---- offsets and records ----

    /** adm-offsets: 20 records in one batch, timestamps BASE_TS + 10*i except offset 7's, BASE_TS + 10000 (the largest). */
    static synchronized void ensureOffsetsTopic() throws Exception {
        if (admin().listTopics().names().get(30, TimeUnit.SECONDS).contains(OFFSETS_TOPIC)) {
            return;
        }
        Kit.createTopic(OFFSETS_TOPIC, 1, null);
        Map<String, Object> cfg = new HashMap<>();
        cfg.put(ProducerConfig.LINGER_MS_CONFIG, 200);
        cfg.put(ProducerConfig.BATCH_SIZE_CONFIG, 1 << 20);
        try (KafkaProducer<String, String> p = Kit.producer(cfg)) {
            List<Future<RecordMetadata>> fs = new ArrayList<>();
            for (int i = 0; i < 20; i++) {
                long ts = i == 7 ? BASE_TS + 10_000 : BASE_TS + 10L * i;
                fs.add(p.send(new ProducerRecord<>(OFFSETS_TOPIC, 0, ts, "k" + i, "v" + i)));
            }
            p.flush();
            for (int i = 0; i < 20; i++) {
                eq((long) i, fs.get(i).get(30, TimeUnit.SECONDS).offset(), "offset of record " + i);
            }
        }
    }

    static ListOffsetsResultInfo listOffset(String topic, OffsetSpec spec, IsolationLevel iso) throws Exception {
        TopicPartition tp = new TopicPartition(topic, 0);
        return admin().listOffsets(Map.of(tp, spec), new ListOffsetsOptions(iso)).partitionResult(tp).get(30, TimeUnit.SECONDS);
    }

    static String listOffsetsEarliestLatest() throws Exception {
        ensureOffsetsTopic();
        eq(0L, listOffset(OFFSETS_TOPIC, OffsetSpec.earliest(), IsolationLevel.READ_UNCOMMITTED).offset(), "earliest");
        eq(20L, listOffset(OFFSETS_TOPIC, OffsetSpec.latest(), IsolationLevel.READ_UNCOMMITTED).offset(), "latest");
        eq(20L, listOffset(OFFSETS_TOPIC, OffsetSpec.latest(), IsolationLevel.READ_COMMITTED).offset(), "latest (read_committed)");
        String unknown = expectError(UnknownTopicOrPartitionException.class, "listOffsets of adm-no-such-topic",
                () -> admin().listOffsets(Map.of(new TopicPartition("adm-no-such-topic", 0), OffsetSpec.latest())).all()
                        .get(30, TimeUnit.SECONDS) != null);
        return "earliest 0, latest 20 (also read_committed); unknown topic -> " + unknown;
    }

    static String listOffsetsMaxTimestamp() throws Exception {
        ensureOffsetsTopic();
        ListOffsetsResultInfo r = listOffset(OFFSETS_TOPIC, OffsetSpec.maxTimestamp(), IsolationLevel.READ_UNCOMMITTED);
        eq(BASE_TS + 10_000, r.timestamp(), "maxTimestamp's timestamp");
        eq(7L, r.offset(), "maxTimestamp's offset (the record with the largest timestamp, in a batch of 20 from offset 0)");
        return "offset 7, timestamp " + r.timestamp() + " (KIP-734)";
    }

    static String listOffsetsForTimestamp() throws Exception {
        ensureOffsetsTopic();
        long[][] cases = {
            {BASE_TS, 0, BASE_TS},
            {BASE_TS + 35, 4, BASE_TS + 40},
            // offset 7's timestamp (BASE_TS + 10000) is the first at or after BASE_TS + 75
            {BASE_TS + 75, 7, BASE_TS + 10_000},
            {BASE_TS + 10_000, 7, BASE_TS + 10_000},
        };
        StringBuilder sb = new StringBuilder();
        for (long[] c : cases) {
            ListOffsetsResultInfo r = listOffset(OFFSETS_TOPIC, OffsetSpec.forTimestamp(c[0]), IsolationLevel.READ_UNCOMMITTED);
            eq(c[1], r.offset(), "forTimestamp(BASE+" + (c[0] - BASE_TS) + ")'s offset");
            eq(c[2], r.timestamp(), "forTimestamp(BASE+" + (c[0] - BASE_TS) + ")'s timestamp");
            sb.append("BASE+").append(c[0] - BASE_TS).append(" -> ").append(c[1]).append("; ");
        }
        ListOffsetsResultInfo none = listOffset(OFFSETS_TOPIC, OffsetSpec.forTimestamp(BASE_TS + 20_000), IsolationLevel.READ_UNCOMMITTED);
        eq(-1L, none.offset(), "forTimestamp past every record's offset");
        return sb + "past the last -> -1";
    }

    static String deleteRecords() throws Exception {
        String topic = "adm-delete-records";
        Kit.createTopic(topic, 1, null);
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaProducer<String, String> p = Kit.producer(Map.of())) {
            for (int i = 0; i < 10; i++) {
                p.send(new ProducerRecord<>(topic, 0, "k" + i, "v" + i));
            }
            p.flush();
        }
        long low = admin().deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(4))).lowWatermarks().get(tp)
                .get(30, TimeUnit.SECONDS).lowWatermark();
        eq(4L, low, "low watermark after deleteRecords(beforeOffset(4))");
        eq(4L, listOffset(topic, OffsetSpec.earliest(), IsolationLevel.READ_UNCOMMITTED).offset(), "earliest after deleteRecords");
        List<ConsumerRecord<String, String>> rs = Kit.read(topic, null, IsolationLevel.READ_UNCOMMITTED);
        eq(6, rs.size(), "records read from the beginning after deleteRecords");
        eq(4L, rs.get(0).offset(), "first offset read");
        eq("v4", rs.get(0).value(), "first value read");
        String past = expectError(OffsetOutOfRangeException.class, "deleteRecords(beforeOffset(100)) on 10 records",
                () -> admin().deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(100))).all().get(30, TimeUnit.SECONDS) != null);
        long all = admin().deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(-1))).lowWatermarks().get(tp)
                .get(30, TimeUnit.SECONDS).lowWatermark();
        eq(10L, all, "low watermark after deleteRecords(beforeOffset(-1)) (-1: the high watermark)");
        eq(10L, listOffset(topic, OffsetSpec.earliest(), IsolationLevel.READ_UNCOMMITTED).offset(), "earliest after deleting all");
        return "before 4 -> low watermark 4, earliest 4, reading starts at offset 4 (v4); before 100 -> " + past
                + "; before -1 (high watermark) -> 10";
    }

    // ---- cluster and log dirs ----

    static String describeCluster() throws Exception {
        DescribeClusterResult r = admin().describeCluster();
        String id = r.clusterId().get(30, TimeUnit.SECONDS);
        check(id != null && !id.isEmpty(), "clusterId %s", id);
        Collection<Node> nodes = r.nodes().get(30, TimeUnit.SECONDS);
        eq(1, nodes.size(), "nodes");
        Node n = nodes.iterator().next();
        eq("127.0.0.1", n.host(), "node host");
        eq(Kit.port, n.port(), "node port");
        Node controller = r.controller().get(30, TimeUnit.SECONDS);
        check(controller != null && controller.id() == n.id(), "controller %s (the only node is %s)", controller, n);
        // The cluster id the clients see in Metadata (handed to a ClusterResourceListener) is the same.
        ClusterIdSerializer.SEEN.set(null);
        Map<String, Object> cfg = new HashMap<>();
        cfg.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ClusterIdSerializer.class.getName());
        try (KafkaProducer<String, String> p = Kit.producer(cfg)) {
            p.send(new ProducerRecord<>("adm-cluster-id", "k", "v")).get(30, TimeUnit.SECONDS);
        }
        String fromMetadata = ClusterIdSerializer.SEEN.get();
        eq(id, fromMetadata, "clusterId in Metadata (producer) vs DescribeCluster");
        return "cluster " + fromMetadata + ", one node " + n.id() + " at 127.0.0.1:" + n.port() + ", controller " + controller.id();
    }

    /** A key serializer that is told the cluster id from Metadata answers. */
    public static final class ClusterIdSerializer extends org.apache.kafka.common.serialization.StringSerializer
            implements org.apache.kafka.common.ClusterResourceListener {
        static final java.util.concurrent.atomic.AtomicReference<String> SEEN = new java.util.concurrent.atomic.AtomicReference<>();

        @Override
        public void onUpdate(org.apache.kafka.common.ClusterResource cluster) {
            SEEN.set(cluster.clusterId());
        }
    }

    static final String LOGDIR_TOPIC = "adm-log-dirs";

    static synchronized void ensureLogDirTopic() throws Exception {
        if (admin().listTopics().names().get(30, TimeUnit.SECONDS).contains(LOGDIR_TOPIC)) {
            return;
        }
        Kit.createTopic(LOGDIR_TOPIC, 1, null);
        try (KafkaProducer<String, String> p = Kit.producer(Map.of())) {
            for (int i = 0; i < 5; i++) {
                p.send(new ProducerRecord<>(LOGDIR_TOPIC, 0, "k" + i, "x".repeat(1000)));
            }
            p.flush();
        }
    }

    static Map<String, LogDirDescription> logDirs(int node) throws Exception {
        return admin().describeLogDirs(List.of(node)).allDescriptions().get(30, TimeUnit.SECONDS).get(node);
    }

    static String describeLogDirs() throws Exception {
        ensureLogDirTopic();
        int node = nodeId();
        Map<String, LogDirDescription> dirs = logDirs(node);
        check(dirs != null && dirs.size() == 1, "describeLogDirs of node %d: %s", node, dirs == null ? null : dirs.keySet());
        Map.Entry<String, LogDirDescription> e = dirs.entrySet().iterator().next();
        if (Kit.logDirs != null) {
            eq(Kit.logDirs, e.getKey(), "the log dir's path");
        }
        LogDirDescription d = e.getValue();
        check(d.error() == null, "log dir error %s", d.error());
        ReplicaInfo ri = d.replicaInfos().get(new TopicPartition(LOGDIR_TOPIC, 0));
        check(ri != null, "no replica of %s-0 in %s (replicas: %s)", LOGDIR_TOPIC, e.getKey(), d.replicaInfos().keySet());
        check(ri.size() >= 5000 && ri.size() < 100_000, "size of %s-0 is %d bytes for 5 records of 1000-byte values", LOGDIR_TOPIC, ri.size());
        eq(0L, ri.offsetLag(), "offset lag");
        check(!ri.isFuture(), "replica is a future one");
        check(d.totalBytes().isPresent() && d.totalBytes().getAsLong() > 0, "totalBytes %s", d.totalBytes());
        check(d.usableBytes().isPresent() && d.usableBytes().getAsLong() <= d.totalBytes().getAsLong(), "usableBytes %s of %s",
                d.usableBytes(), d.totalBytes());
        return "one dir " + e.getKey() + " with " + d.replicaInfos().size() + " replicas; " + LOGDIR_TOPIC + "-0 is " + ri.size()
                + " bytes; total " + d.totalBytes().getAsLong() + ", usable " + d.usableBytes().getAsLong();
    }

    static String describeReplicaLogDirs() throws Exception {
        ensureLogDirTopic();
        int node = nodeId();
        String dir = logDirs(node).keySet().iterator().next();
        TopicPartitionReplica rep = new TopicPartitionReplica(LOGDIR_TOPIC, 0, node);
        ReplicaLogDirInfo info = admin().describeReplicaLogDirs(List.of(rep)).all().get(30, TimeUnit.SECONDS).get(rep);
        check(info != null, "no answer for %s", rep);
        eq(dir, info.getCurrentReplicaLogDir(), "current log dir of " + rep);
        eq(0L, info.getCurrentReplicaOffsetLag(), "offset lag");
        eq(null, info.getFutureReplicaLogDir(), "future log dir");
        return rep + " in " + dir + ", lag 0, no future dir";
    }

    // ---- producers and transactions ----

    private static KafkaProducer<String, String> txnProducer;

    /** A transactional producer (adm-txn, timeout 60 s) with an open transaction holding 3 records on adm-txn-topic-0. */
    static synchronized KafkaProducer<String, String> openTransaction() throws Exception {
        if (txnProducer != null) {
            return txnProducer;
        }
        Kit.ensureTopic(TXN_TOPIC, 1);
        Map<String, Object> cfg = new HashMap<>();
        cfg.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, TXN_ID);
        cfg.put(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, 60_000);
        KafkaProducer<String, String> p = Kit.producer(cfg);
        try {
            p.initTransactions();
            p.beginTransaction();
            for (int i = 0; i < 3; i++) {
                p.send(new ProducerRecord<>(TXN_TOPIC, 0, "k" + i, "open-" + i));
            }
            p.flush();
        } catch (RuntimeException e) {
            p.close(Duration.ofSeconds(5));
            throw e;
        }
        txnProducer = p;
        return p;
    }

    static String describeProducers() throws Exception {
        openTransaction();
        TopicPartition tp = new TopicPartition(TXN_TOPIC, 0);
        List<ProducerState> ps = admin().describeProducers(List.of(tp)).partitionResult(tp).get(30, TimeUnit.SECONDS).activeProducers();
        eq(1, ps.size(), "active producers on " + tp);
        ProducerState s = ps.get(0);
        check(s.producerId() >= 0, "producerId %d", s.producerId());
        check(s.producerEpoch() >= 0, "producerEpoch %d", s.producerEpoch());
        eq(2, s.lastSequence(), "lastSequence after 3 records");
        eq(java.util.OptionalLong.of(0), s.currentTransactionStartOffset(), "currentTransactionStartOffset");
        check(s.lastTimestamp() > 0, "lastTimestamp %d", s.lastTimestamp());
        return "producer " + s.producerId() + " epoch " + s.producerEpoch() + ", lastSequence 2, open transaction from offset 0";
    }

    static String listTransactions() throws Exception {
        openTransaction();
        TransactionListing l = null;
        for (TransactionListing x : admin().listTransactions().all().get(30, TimeUnit.SECONDS)) {
            if (x.transactionalId().equals(TXN_ID)) {
                l = x;
            }
        }
        check(l != null, "listTransactions lacks %s", TXN_ID);
        eq(TransactionState.ONGOING, l.state(), "state of " + TXN_ID);
        TopicPartition tp = new TopicPartition(TXN_TOPIC, 0);
        long pid = admin().describeProducers(List.of(tp)).partitionResult(tp).get(30, TimeUnit.SECONDS).activeProducers().get(0).producerId();
        eq(pid, l.producerId(), "producerId (listTransactions vs describeProducers)");
        boolean inCommitted = false;
        for (TransactionListing x : admin().listTransactions(new org.apache.kafka.clients.admin.ListTransactionsOptions()
                .filterStates(Set.of(TransactionState.COMPLETE_COMMIT))).all().get(30, TimeUnit.SECONDS)) {
            inCommitted |= x.transactionalId().equals(TXN_ID);
        }
        check(!inCommitted, "%s listed under the filter COMPLETE_COMMIT while ONGOING", TXN_ID);
        return TXN_ID + " ONGOING with producer " + pid + "; not under a COMPLETE_COMMIT filter";
    }

    static String describeTransactions() throws Exception {
        KafkaProducer<String, String> p = openTransaction();
        int node = nodeId();
        TopicPartition tp = new TopicPartition(TXN_TOPIC, 0);
        try {
            TransactionDescription d = admin().describeTransactions(List.of(TXN_ID)).description(TXN_ID).get(30, TimeUnit.SECONDS);
            eq(TransactionState.ONGOING, d.state(), "state");
            eq(node, d.coordinatorId(), "coordinator");
            eq(60_000L, d.transactionTimeoutMs(), "transaction timeout");
            eq(Set.of(tp), d.topicPartitions(), "partitions in the transaction");
            check(d.transactionStartTimeMs().isPresent() && d.transactionStartTimeMs().getAsLong() <= System.currentTimeMillis(),
                    "transactionStartTimeMs %s", d.transactionStartTimeMs());
            long pid = d.producerId();
            p.commitTransaction();
            Kit.waitFor(TXN_ID + " to be COMPLETE_COMMIT", 10_000, () -> admin().describeTransactions(List.of(TXN_ID))
                    .description(TXN_ID).get(30, TimeUnit.SECONDS).state() == TransactionState.COMPLETE_COMMIT);
            TransactionDescription after = admin().describeTransactions(List.of(TXN_ID)).description(TXN_ID).get(30, TimeUnit.SECONDS);
            eq(pid, after.producerId(), "producerId after commit");
            List<ConsumerRecord<String, String>> rs = Kit.read(TXN_TOPIC, null, IsolationLevel.READ_COMMITTED);
            eq(3, rs.size(), "committed records read with read_committed");
            return "ONGOING on coordinator " + node + ", timeout 60000, partitions {" + tp + "}, producer " + pid
                    + "; after commit COMPLETE_COMMIT and the 3 records readable with read_committed";
        } finally {
            synchronized (AdminChecks.class) {
                txnProducer = null;
            }
            p.close(Duration.ofSeconds(10));
        }
    }
}
