package main

// franz-go's kadm: topics, configs, records, offsets, groups, cluster metadata, log dirs.

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() {
	register("kadm-create-list-topics", kadmCreateListTopics)
	register("kadm-describe-configs", kadmDescribeConfigs)
	register("kadm-alter-configs-incremental", kadmAlterConfigsIncremental)
	register("kadm-alter-configs-legacy", kadmAlterConfigsLegacy)
	register("kadm-alter-configs-live", kadmAlterConfigsLive)
	register("kadm-delete-records", kadmDeleteRecords)
	register("kadm-list-offsets", kadmListOffsets)
	register("kadm-list-max-timestamp", kadmListMaxTimestamp)
	register("kadm-groups", kadmGroups)
	register("kadm-metadata", kadmMetadata)
	register("kadm-log-dirs", kadmLogDirs)
	register("kadm-delete-topics", kadmDeleteTopics)
}

// withAdmin runs fn with a kgo client and its kadm client, closing both after.
// Its producer places records by their Partition field (the manual partitioner).
func (e *env) withAdmin(fn func(cl *kgo.Client, adm *kadm.Client) (string, error), opts ...kgo.Opt) (string, error) {
	cl, err := e.newKgo(append([]kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
	if err != nil {
		return "", err
	}
	defer cl.Close()
	return fn(cl, kadm.NewClient(cl))
}

func brokerID(ctx context.Context, adm *kadm.Client) (int32, error) {
	m, err := adm.BrokerMetadata(ctx)
	if err != nil {
		return 0, fmt.Errorf("Metadata: %w", err)
	}
	if len(m.Brokers) != 1 {
		return 0, fmt.Errorf("Metadata lists %d brokers, expected 1", len(m.Brokers))
	}
	return m.Brokers[0].NodeID, nil
}

func kadmCreateListTopics(ctx context.Context, e *env) (string, error) {
	return e.withAdmin(func(cl *kgo.Client, adm *kadm.Client) (string, error) {
		id, err := brokerID(ctx, adm)
		if err != nil {
			return "", err
		}
		t1, t2, t3 := e.topicName("a"), e.topicName("b"), e.topicName("validate-only")
		created, err := adm.CreateTopics(ctx, 3, 1, map[string]*string{"retention.ms": strp("3600000")}, t1, t2)
		if err != nil {
			return "", fmt.Errorf("CreateTopics: %w", err)
		}
		ids := map[string]kadm.TopicID{}
		for _, t := range []string{t1, t2} {
			r, ok := created[t]
			if !ok || r.Err != nil {
				return "", fmt.Errorf("CreateTopics %s: %+v (in response %v)", t, r, ok)
			}
			if r.NumPartitions != 3 || r.ReplicationFactor != 1 {
				return "", fmt.Errorf("CreateTopics %s answered %d partitions, replication factor %d; expected 3, 1", t, r.NumPartitions, r.ReplicationFactor)
			}
			if r.ID == (kadm.TopicID{}) {
				return "", fmt.Errorf("CreateTopics %s answered a zero topic id", t)
			}
			if c, ok := r.Configs["retention.ms"]; !ok || c.MaybeValue() != "3600000" {
				return "", fmt.Errorf("CreateTopics %s answered retention.ms %+v (present %v), expected 3600000", t, c, ok)
			}
			ids[t] = r.ID
		}
		// kadm's CreateTopic returns the topic's error as its error too.
		dup, err := adm.CreateTopic(ctx, 1, 1, nil, t1)
		if !errors.Is(err, kerr.TopicAlreadyExists) || !errors.Is(dup.Err, kerr.TopicAlreadyExists) {
			return "", fmt.Errorf("creating %s again answered %v (%s), expected TOPIC_ALREADY_EXISTS", t1, dup.Err, dup.ErrMessage)
		}
		v, err := adm.ValidateCreateTopics(ctx, 2, 1, nil, t3)
		if err != nil {
			return "", fmt.Errorf("CreateTopics validate_only: %w", err)
		}
		if r := v[t3]; r.Err != nil {
			return "", fmt.Errorf("CreateTopics validate_only %s: %v (%s)", t3, r.Err, r.ErrMessage)
		}
		all, err := adm.ListTopics(ctx)
		if err != nil {
			return "", fmt.Errorf("ListTopics: %w", err)
		}
		for _, t := range []string{t1, t2} {
			d, ok := all[t]
			if !ok || d.Err != nil {
				return "", fmt.Errorf("ListTopics: %s %+v (listed %v)", t, d, ok)
			}
			if d.ID != ids[t] {
				return "", fmt.Errorf("ListTopics: %s has id %s, CreateTopics gave %s", t, d.ID, ids[t])
			}
			if len(d.Partitions) != 3 {
				return "", fmt.Errorf("ListTopics: %s has %d partitions, expected 3", t, len(d.Partitions))
			}
			for p := int32(0); p < 3; p++ {
				pd, ok := d.Partitions[p]
				if !ok || pd.Err != nil || pd.Leader != id || fmt.Sprint(pd.Replicas) != fmt.Sprint([]int32{id}) || fmt.Sprint(pd.ISR) != fmt.Sprint([]int32{id}) {
					return "", fmt.Errorf("ListTopics: %s[%d] is %+v (listed %v), expected leader, replicas and ISR broker %d", t, p, pd, ok, id)
				}
			}
		}
		if _, ok := all[t3]; ok {
			return "", fmt.Errorf("ListTopics lists %s, which was only validated (validate_only)", t3)
		}
		return fmt.Sprintf("CreateTopics made 2 topics of 3 partitions (ids, configs in the answer), a duplicate got TOPIC_ALREADY_EXISTS, validate_only created nothing, ListTopics (%d topics) shows both with leader/replicas/ISR %d", len(all), id), nil
	})
}

func findConfig(rcs kadm.ResourceConfigs, name, key string) (kadm.Config, error) {
	rc, err := rcs.On(name, nil)
	if err != nil {
		return kadm.Config{}, fmt.Errorf("DescribeConfigs answered nothing for %s", name)
	}
	if rc.Err != nil {
		return kadm.Config{}, fmt.Errorf("DescribeConfigs %s: %w (%s)", name, rc.Err, rc.ErrMessage)
	}
	for _, c := range rc.Configs {
		if c.Key == key {
			return c, nil
		}
	}
	var keys []string
	for _, c := range rc.Configs {
		keys = append(keys, c.Key)
	}
	return kadm.Config{}, fmt.Errorf("DescribeConfigs %s has no %s (it answers %d configs: %s)", name, key, len(rc.Configs), strings.Join(keys, " "))
}

// expectConfig: the topic's config key is value, from source (or, with source -1, from any
// source but DYNAMIC_TOPIC_CONFIG).
func expectConfig(ctx context.Context, adm *kadm.Client, topic, key, value string, source kmsg.ConfigSource) error {
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return fmt.Errorf("DescribeConfigs: %w", err)
	}
	c, err := findConfig(rcs, topic, key)
	if err != nil {
		return err
	}
	if c.MaybeValue() != value {
		return fmt.Errorf("%s of %s is %q (source %s), expected %q", key, topic, c.MaybeValue(), c.Source, value)
	}
	if source >= 0 && c.Source != source {
		return fmt.Errorf("%s of %s has source %s, expected %s", key, topic, c.Source, source)
	}
	if source < 0 && c.Source == kmsg.ConfigSourceDynamicTopicConfig {
		return fmt.Errorf("%s of %s has source %s, expected a default's", key, topic, c.Source)
	}
	return nil
}

func kadmDescribeConfigs(ctx context.Context, e *env) (string, error) {
	topic := e.topicName("")
	if err := e.createTopic(ctx, topic, 1, map[string]*string{"retention.ms": strp("3600000"), "max.message.bytes": strp("2000000")}); err != nil {
		return "", err
	}
	return e.withAdmin(func(cl *kgo.Client, adm *kadm.Client) (string, error) {
		for _, x := range []struct {
			key, value string
			source     kmsg.ConfigSource
		}{
			{"retention.ms", "3600000", kmsg.ConfigSourceDynamicTopicConfig},
			{"max.message.bytes", "2000000", kmsg.ConfigSourceDynamicTopicConfig},
			{"cleanup.policy", "delete", -1},
			{"compression.type", "producer", -1},
		} {
			if err := expectConfig(ctx, adm, topic, x.key, x.value, x.source); err != nil {
				return "", err
			}
		}
		id, err := brokerID(ctx, adm)
		if err != nil {
			return "", err
		}
		rcs, err := adm.DescribeBrokerConfigs(ctx, id)
		if err != nil {
			return "", fmt.Errorf("DescribeConfigs (broker %d): %w", id, err)
		}
		name := strconv.Itoa(int(id))
		np, err := findConfig(rcs, name, "num.partitions")
		if err != nil {
			return "", err
		}
		if np.MaybeValue() != "1" {
			return "", fmt.Errorf("broker num.partitions is %q, expected 1", np.MaybeValue())
		}
		extra := ""
		if e.logDir != "" {
			ld, err := findConfig(rcs, name, "log.dirs")
			if err != nil {
				return "", err
			}
			if ld.MaybeValue() != e.logDir {
				return "", fmt.Errorf("broker log.dirs is %q, expected %q", ld.MaybeValue(), e.logDir)
			}
			extra = ", log.dirs"
		}
		return "DescribeConfigs: the topic's retention.ms and max.message.bytes (DYNAMIC_TOPIC_CONFIG), cleanup.policy=delete and compression.type=producer (defaults); the broker's num.partitions=1" + extra, nil
	})
}

// notAdvertised explains kgo's "broker is too old": the broker's ApiVersions answer does not
// list the API, so kgo did not send the request at all.
func notAdvertised(err error, req kmsg.Request) error {
	if err == nil || !strings.Contains(err.Error(), "broker is too old") {
		return err
	}
	return fmt.Errorf("%w [the broker's ApiVersions does not list %s (key %d); kgo would send up to v%d and sent nothing]",
		err, kmsg.NameForKey(req.Key()), req.Key(), req.MaxVersion())
}

func alterErr(what string, rs kadm.AlterConfigsResponses, err error, topic string) error {
	if err != nil {
		if what == "AlterConfigs" {
			return fmt.Errorf("%s: %w", what, notAdvertised(err, kmsg.NewPtrAlterConfigsRequest()))
		}
		return fmt.Errorf("%s: %w", what, notAdvertised(err, kmsg.NewPtrIncrementalAlterConfigsRequest()))
	}
	r, err := rs.On(topic, nil)
	if err != nil {
		return fmt.Errorf("%s: no answer for %s", what, topic)
	}
	if r.Err != nil {
		return fmt.Errorf("%s %s: %w (%s)", what, topic, r.Err, r.ErrMessage)
	}
	return nil
}

func kadmAlterConfigsIncremental(ctx context.Context, e *env) (string, error) {
	topic := e.topicName("")
	if err := e.createTopic(ctx, topic, 1, map[string]*string{"retention.ms": strp("3600000")}); err != nil {
		return "", err
	}
	return e.withAdmin(func(cl *kgo.Client, adm *kadm.Client) (string, error) {
		const what = "IncrementalAlterConfigs"
		rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
			{Op: kadm.SetConfig, Name: "retention.ms", Value: strp("7200000")},
			{Op: kadm.SetConfig, Name: "max.message.bytes", Value: strp("2000000")},
		}, topic)
		if err := alterErr(what+" (set)", rs, err, topic); err != nil {
			return "", err
		}
		if err := expectConfig(ctx, adm, topic, "retention.ms", "7200000", kmsg.ConfigSourceDynamicTopicConfig); err != nil {
			return "", fmt.Errorf("after set: %w", err)
		}
		if err := expectConfig(ctx, adm, topic, "max.message.bytes", "2000000", kmsg.ConfigSourceDynamicTopicConfig); err != nil {
			return "", fmt.Errorf("after set: %w", err)
		}
		rs, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "retention.ms"}}, topic)
		if err := alterErr(what+" (delete)", rs, err, topic); err != nil {
			return "", err
		}
		if err := expectConfig(ctx, adm, topic, "retention.ms", "604800000", -1); err != nil {
			return "", fmt.Errorf("after delete: %w", err)
		}
		if err := expectConfig(ctx, adm, topic, "max.message.bytes", "2000000", kmsg.ConfigSourceDynamicTopicConfig); err != nil {
			return "", fmt.Errorf("after deleting another key: %w", err)
		}
		rs, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "no.such.config", Value: strp("1")}}, topic)
		if err != nil {
			return "", fmt.Errorf("%s (unknown key): %w", what, err)
		}
		if r, _ := rs.On(topic, nil); !errors.Is(r.Err, kerr.InvalidConfig) {
			return "", fmt.Errorf("%s setting no.such.config answered %v (%s), expected INVALID_CONFIG", what, r.Err, r.ErrMessage)
		}
		return "IncrementalAlterConfigs set retention.ms and max.message.bytes (DescribeConfigs shows them, DYNAMIC_TOPIC_CONFIG), delete reverted retention.ms to 604800000 and kept the other; an unknown key got INVALID_CONFIG", nil
	})
}

func kadmAlterConfigsLegacy(ctx context.Context, e *env) (string, error) {
	topic := e.topicName("")
	if err := e.createTopic(ctx, topic, 1, map[string]*string{"retention.ms": strp("3600000"), "max.message.bytes": strp("2000000")}); err != nil {
		return "", err
	}
	return e.withAdmin(func(cl *kgo.Client, adm *kadm.Client) (string, error) {
		rs, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: strp("7200000")}}, topic)
		if err := alterErr("AlterConfigs", rs, err, topic); err != nil {
			return "", err
		}
		if err := expectConfig(ctx, adm, topic, "retention.ms", "7200000", kmsg.ConfigSourceDynamicTopicConfig); err != nil {
			return "", fmt.Errorf("after AlterConfigs: %w", err)
		}
		// AlterConfigs replaces the whole set: max.message.bytes, not named, is back to its default.
		if err := expectConfig(ctx, adm, topic, "max.message.bytes", "1048588", -1); err != nil {
			return "", fmt.Errorf("after AlterConfigs (which replaces the topic's whole config): %w", err)
		}
		return "AlterConfigs (non-incremental) set retention.ms=7200000 and, replacing the whole set, reverted max.message.bytes to 1048588", nil
	})
}

// kadmAlterConfigsLive: a config altered through IncrementalAlterConfigs applies at once:
// a 1.5 MB record is refused under the default max.message.bytes and accepted after it is
// raised to 2 MB.
func kadmAlterConfigsLive(ctx context.Context, e *env) (string, error) {
	topic := e.topicName("")
	if err := e.createTopic(ctx, topic, 1, nil); err != nil {
		return "", err
	}
	return e.withAdmin(func(cl *kgo.Client, adm *kadm.Client) (string, error) {
		// Random bytes, uncompressed: the broker checks the batch's size as sent.
		value := make([]byte, 1_500_000)
		rand.New(rand.NewSource(1)).Read(value)
		big := &kgo.Record{Topic: topic, Key: []byte("big"), Value: value}
		err := cl.ProduceSync(ctx, big).FirstErr()
		if !errors.Is(err, kerr.MessageTooLarge) {
			return "", fmt.Errorf("a 1.5 MB record under the default max.message.bytes (1048588) answered %v, expected MESSAGE_TOO_LARGE", err)
		}
		rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "max.message.bytes", Value: strp("2000000")}}, topic)
		if err := alterErr("IncrementalAlterConfigs", rs, err, topic); err != nil {
			return "", err
		}
		big2 := &kgo.Record{Topic: topic, Key: []byte("big"), Value: big.Value}
		if err := cl.ProduceSync(ctx, big2).FirstErr(); err != nil {
			return "", fmt.Errorf("a 1.5 MB record after max.message.bytes=2000000: %w", err)
		}
		got, err := e.readAll(ctx, topic, 1, 1, kgo.FetchMaxBytes(4<<20), kgo.FetchMaxPartitionBytes(4<<20))
		if err != nil {
			return "", err
		}
		if err := verifyRead([]expRecord{expFromProduced(big2)}, got); err != nil {
			return "", err
		}
		return "a 1.5 MB record got MESSAGE_TOO_LARGE, then after IncrementalAlterConfigs max.message.bytes=2000000 was accepted and read back", nil
	}, kgo.ProducerBatchMaxBytes(4<<20), kgo.RecordRetries(1), kgo.ProducerBatchCompression(kgo.NoCompression()))
}

func kadmDeleteRecords(ctx context.Context, e *env) (string, error) {
	topic := e.topicName("")
	if err := e.createTopic(ctx, topic, 2, nil); err != nil {
		return "", err
	}
	return e.withAdmin(func(cl *kgo.Client, adm *kadm.Client) (string, error) {
		rs := testRecords(topic, 40)
		for i, r := range rs {
			r.Partition = int32(i % 2)
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			return "", fmt.Errorf("ProduceSync: %w", err)
		}
		var os kadm.Offsets
		os.AddOffset(topic, 0, 5, -1)
		os.AddOffset(topic, 1, -1, -1) // -1: up to the high watermark
		dr, err := adm.DeleteRecords(ctx, os)
		if err != nil {
			return "", fmt.Errorf("DeleteRecords: %w", notAdvertised(err, kmsg.NewPtrDeleteRecordsRequest()))
		}
		for p, low := range map[int32]int64{0: 5, 1: 20} {
			r, ok := dr.Lookup(topic, p)
			if !ok || r.Err != nil || r.LowWatermark != low {
				return "", fmt.Errorf("DeleteRecords %s[%d]: %+v (answered %v), expected low watermark %d", topic, p, r, ok, low)
			}
		}
		starts, err := adm.ListStartOffsets(ctx, topic)
		if err != nil {
			return "", fmt.Errorf("ListOffsets earliest: %w", err)
		}
		for p, low := range map[int32]int64{0: 5, 1: 20} {
			if o, _ := starts.Lookup(topic, p); o.Err != nil || o.Offset != low {
				return "", fmt.Errorf("log start offset of %s[%d] is %d (%v) after DeleteRecords, expected %d", topic, p, o.Offset, o.Err, low)
			}
		}
		var want []expRecord
		for _, r := range rs {
			if r.Partition == 0 && r.Offset >= 5 {
				want = append(want, expFromProduced(r))
			}
		}
		got, err := e.readAll(ctx, topic, 2, len(want))
		if err != nil {
			return "", err
		}
		if err := verifyRead(want, got); err != nil {
			return "", fmt.Errorf("reading from the start after DeleteRecords: %w", err)
		}
		var past kadm.Offsets
		past.AddOffset(topic, 0, 100, -1)
		dr, err = adm.DeleteRecords(ctx, past)
		if err != nil {
			return "", fmt.Errorf("DeleteRecords past the end: %w", err)
		}
		if r, _ := dr.Lookup(topic, 0); !errors.Is(r.Err, kerr.OffsetOutOfRange) {
			return "", fmt.Errorf("DeleteRecords to offset 100 of 20 answered %v, expected OFFSET_OUT_OF_RANGE", r.Err)
		}
		return "DeleteRecords to 5 and to the high watermark (-1): low watermarks 5 and 20, log start offsets follow, a reader from the start gets offsets 5..19 only; past the end: OFFSET_OUT_OF_RANGE", nil
	})
}

// oneBatch produces 20 records as one uncompressed batch whose timestamps are base+i, except
// offset 7, which has the largest, base+100000.
func oneBatch(ctx context.Context, cl *kgo.Client, topic string) (time.Time, []*kgo.Record, error) {
	base := time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())
	rs := make([]*kgo.Record, 20)
	var mu sync.Mutex
	var perr error
	for i := range rs {
		ts := base.Add(time.Duration(i) * time.Millisecond)
		if i == 7 {
			ts = base.Add(100 * time.Second)
		}
		rs[i] = &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("ts %d", i)), Timestamp: ts}
		cl.Produce(ctx, rs[i], func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil && perr == nil {
				perr = err
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return base, nil, fmt.Errorf("Flush: %w", err)
	}
	if perr != nil {
		return base, nil, fmt.Errorf("produce: %w", perr)
	}
	return base, rs, checkOffsetsDense(rs)
}

func kadmListOffsets(ctx context.Context, e *env) (string, error) {
	topic := e.topicName("")
	if err := e.createTopic(ctx, topic, 1, nil); err != nil {
		return "", err
	}
	return e.withAdmin(func(cl *kgo.Client, adm *kadm.Client) (string, error) {
		empty, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return "", fmt.Errorf("ListOffsets latest: %w", err)
		}
		if o, _ := empty.Lookup(topic, 0); o.Err != nil || o.Offset != 0 {
			return "", fmt.Errorf("end offset of the empty topic: %d (%v), expected 0", o.Offset, o.Err)
		}
		base, rs, err := oneBatch(ctx, cl, topic)
		if err != nil {
			return "", err
		}
		got, err := e.readAll(ctx, topic, 1, 20)
		if err != nil {
			return "", err
		}
		if err := verifyRead(expsOf(rs), got); err != nil {
			return "", err
		}
		var bad []string
		type q struct {
			what   string
			list   func() (kadm.ListedOffsets, error)
			offset int64
		}
		for _, x := range []q{
			{"earliest (-2)", func() (kadm.ListedOffsets, error) { return adm.ListStartOffsets(ctx, topic) }, 0},
			{"latest (-1)", func() (kadm.ListedOffsets, error) { return adm.ListEndOffsets(ctx, topic) }, 20},
			{"read_committed latest", func() (kadm.ListedOffsets, error) { return adm.ListCommittedOffsets(ctx, topic) }, 20},
			{"timestamp base+5ms", func() (kadm.ListedOffsets, error) { return adm.ListOffsetsAfterMilli(ctx, base.UnixMilli()+5, topic) }, 5},
			{"timestamp base+8ms (offset 7 has base+100s)", func() (kadm.ListedOffsets, error) {
				return adm.ListOffsetsAfterMilli(ctx, base.UnixMilli()+8, topic)
			}, 7},
			{"timestamp base+200s (after every record: the end)", func() (kadm.ListedOffsets, error) {
				return adm.ListOffsetsAfterMilli(ctx, base.UnixMilli()+200_000, topic)
			}, 20},
		} {
			l, err := x.list()
			if err != nil {
				return "", fmt.Errorf("ListOffsets %s: %w", x.what, err)
			}
			if o, _ := l.Lookup(topic, 0); o.Err != nil || o.Offset != x.offset {
				bad = append(bad, fmt.Sprintf("%s: offset %d timestamp %d (%v), expected %d", x.what, o.Offset, o.Timestamp, o.Err, x.offset))
			}
		}
		ts, err := adm.ListOffsetsAfterMilli(ctx, base.UnixMilli()+5, topic)
		if err != nil {
			return "", err
		}
		if o, _ := ts.Lookup(topic, 0); o.Timestamp != base.UnixMilli()+5 {
			bad = append(bad, fmt.Sprintf("by timestamp base+5ms: timestamp %d, expected %d (the record's)", o.Timestamp, base.UnixMilli()+5))
		}
		if len(bad) > 0 {
			return "", fmt.Errorf("ListOffsets on one 20-record batch (timestamps base+i, offset 7 base+100s): %s", strings.Join(bad, "; "))
		}
		return "ListOffsets on one 20-record batch: earliest 0, latest 20, read_committed 20, by timestamp 5 / 7 (the out-of-order one) / end, with the record's timestamp", nil
	})
}

func kadmListMaxTimestamp(ctx context.Context, e *env) (string, error) {
	topic := e.topicName("")
	if err := e.createTopic(ctx, topic, 1, nil); err != nil {
		return "", err
	}
	return e.withAdmin(func(cl *kgo.Client, adm *kadm.Client) (string, error) {
		base, _, err := oneBatch(ctx, cl, topic)
		if err != nil {
			return "", err
		}
		l, err := adm.ListMaxTimestampOffsets(ctx, topic)
		if err != nil {
			return "", fmt.Errorf("ListOffsets MAX_TIMESTAMP (-3): %w", err)
		}
		o, _ := l.Lookup(topic, 0)
		want := base.Add(100 * time.Second).UnixMilli()
		if o.Err != nil || o.Offset != 7 || o.Timestamp != want {
			return "", fmt.Errorf("ListOffsets MAX_TIMESTAMP (-3) on a 20-record batch whose largest timestamp is on offset 7: offset %d timestamp %d (%v), expected offset 7 timestamp %d (KIP-734)", o.Offset, o.Timestamp, o.Err, want)
		}
		return "ListOffsets MAX_TIMESTAMP (-3) gives offset 7 and its timestamp, the largest in the batch", nil
	}, kgo.ManualFlushing())
}

func kadmGroups(ctx context.Context, e *env) (string, error) {
	topic := e.topicName("")
	group := topic + "-g"
	if err := e.createTopic(ctx, topic, 2, nil); err != nil {
		return "", err
	}
	return e.withAdmin(func(cl *kgo.Client, adm *kadm.Client) (string, error) {
		rs := testRecords(topic, 20)
		for i, r := range rs {
			r.Partition = int32(i % 2)
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			return "", fmt.Errorf("ProduceSync: %w", err)
		}
		mem, err := e.newKgo(kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(), kgo.ClientID("spate-go-check"))
		if err != nil {
			return "", err
		}
		defer mem.Close()
		got, err := collect(ctx, mem, 20, 200*time.Millisecond)
		if err != nil {
			return "", fmt.Errorf("group member: %w", err)
		}
		if err := verifyRead(expsOf(rs), got); err != nil {
			return "", fmt.Errorf("group member: %w", err)
		}
		if err := mem.CommitUncommittedOffsets(ctx); err != nil {
			return "", fmt.Errorf("CommitUncommittedOffsets: %w", err)
		}
		lg, err := adm.ListGroups(ctx)
		if err != nil {
			return "", fmt.Errorf("ListGroups: %w", err)
		}
		if g, ok := lg[group]; !ok || g.ProtocolType != "consumer" || g.State != "Stable" {
			return "", fmt.Errorf("ListGroups: %s is %+v (listed %v), expected protocol type consumer, state Stable", group, g, ok)
		}
		dg, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			return "", fmt.Errorf("DescribeGroups: %w", err)
		}
		d := dg[group]
		if d.Err != nil || d.State != "Stable" || d.ProtocolType != "consumer" || d.Protocol != "cooperative-sticky" || len(d.Members) != 1 {
			return "", fmt.Errorf("DescribeGroups %s: err %v, state %q, protocol type %q, protocol %q, %d members; expected Stable, consumer, cooperative-sticky, 1", group, d.Err, d.State, d.ProtocolType, d.Protocol, len(d.Members))
		}
		m := d.Members[0]
		if m.ClientID != "spate-go-check" || m.MemberID == "" {
			return "", fmt.Errorf("DescribeGroups member: client id %q, member id %q", m.ClientID, m.MemberID)
		}
		if a := d.AssignedPartitions(); !a.Lookup(topic, 0) || !a.Lookup(topic, 1) {
			return "", fmt.Errorf("DescribeGroups: the member's assignment is %v, expected %s [0 1]", a, topic)
		}
		if j, ok := m.Join.AsConsumer(); !ok || fmt.Sprint(j.Topics) != fmt.Sprint([]string{topic}) {
			return "", fmt.Errorf("DescribeGroups: the member's subscription is %+v (%v), expected [%s]", j, ok, topic)
		}
		if err := expectOffsets(ctx, adm, group, topic, map[int32]int64{0: 10, 1: 10}, nil); err != nil {
			return "", fmt.Errorf("after the member's commit: %w", err)
		}
		del, err := adm.DeleteGroups(ctx, group)
		if err != nil {
			return "", fmt.Errorf("DeleteGroups (active group): %w", err)
		}
		if !errors.Is(del[group].Err, kerr.NonEmptyGroup) {
			return "", fmt.Errorf("DeleteGroups of a group with a member answered %v, expected NON_EMPTY_GROUP", del[group].Err)
		}
		mem.Close()
		dg, err = adm.DescribeGroups(ctx, group)
		if err != nil {
			return "", fmt.Errorf("DescribeGroups (after leaving): %w", err)
		}
		if d := dg[group]; d.Err != nil || d.State != "Empty" || len(d.Members) != 0 {
			return "", fmt.Errorf("DescribeGroups after the member left: err %v, state %q, %d members; expected Empty, 0", d.Err, d.State, len(d.Members))
		}
		var os kadm.Offsets
		os.Add(kadm.Offset{Topic: topic, Partition: 0, At: 3, LeaderEpoch: -1, Metadata: "meta-0"})
		os.Add(kadm.Offset{Topic: topic, Partition: 1, At: 4, LeaderEpoch: -1, Metadata: "meta-1"})
		cr, err := adm.CommitOffsets(ctx, group, os)
		if err != nil {
			return "", fmt.Errorf("OffsetCommit: %w", err)
		}
		if err := cr.Error(); err != nil {
			return "", fmt.Errorf("OffsetCommit: %w", err)
		}
		if err := expectOffsets(ctx, adm, group, topic, map[int32]int64{0: 3, 1: 4}, map[int32]string{0: "meta-0", 1: "meta-1"}); err != nil {
			return "", fmt.Errorf("after kadm's commit: %w", err)
		}
		del, err = adm.DeleteGroups(ctx, group)
		if err != nil {
			return "", fmt.Errorf("DeleteGroups: %w", err)
		}
		if err := del[group].Err; err != nil {
			return "", fmt.Errorf("DeleteGroups %s: %w", group, err)
		}
		offs, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return "", fmt.Errorf("OffsetFetch after DeleteGroups: %w", err)
		}
		if len(offs[topic]) != 0 {
			return "", fmt.Errorf("OffsetFetch after DeleteGroups still answers %v", offs)
		}
		dg, err = adm.DescribeGroups(ctx, group)
		if err != nil {
			return "", fmt.Errorf("DescribeGroups (deleted): %w", err)
		}
		if d := dg[group]; d.State != "Dead" {
			return "", fmt.Errorf("DescribeGroups of the deleted group: state %q err %v, expected Dead", d.State, d.Err)
		}
		del, err = adm.DeleteGroups(ctx, group)
		if err != nil {
			return "", fmt.Errorf("DeleteGroups (again): %w", err)
		}
		if !errors.Is(del[group].Err, kerr.GroupIDNotFound) {
			return "", fmt.Errorf("DeleteGroups of a deleted group answered %v, expected GROUP_ID_NOT_FOUND", del[group].Err)
		}
		return "ListGroups/DescribeGroups show the Stable cooperative-sticky group and its member's subscription and assignment; OffsetFetch 10/10 after its commit; DeleteGroups refused (NON_EMPTY_GROUP), then Empty, OffsetCommit 3/4 with metadata, DeleteGroups, no offsets, Dead, GROUP_ID_NOT_FOUND", nil
	})
}

func expectOffsets(ctx context.Context, adm *kadm.Client, group, topic string, want map[int32]int64, meta map[int32]string) error {
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return fmt.Errorf("OffsetFetch: %w", err)
	}
	if err := offs.Error(); err != nil {
		return fmt.Errorf("OffsetFetch: %w", err)
	}
	if len(offs[topic]) != len(want) {
		return fmt.Errorf("OffsetFetch %s answers %d partitions of %s, expected %d", group, len(offs[topic]), topic, len(want))
	}
	for p, at := range want {
		o, ok := offs.Lookup(topic, p)
		if !ok || o.At != at || (meta != nil && o.Metadata != meta[p]) {
			return fmt.Errorf("OffsetFetch %s: %s[%d] is %+v (found %v), expected offset %d metadata %q", group, topic, p, o.Offset, ok, at, meta[p])
		}
	}
	return nil
}

func kadmMetadata(ctx context.Context, e *env) (string, error) {
	topic := e.topicName("")
	if err := e.createTopic(ctx, topic, 2, nil); err != nil {
		return "", err
	}
	return e.withAdmin(func(cl *kgo.Client, adm *kadm.Client) (string, error) {
		bm, err := adm.BrokerMetadata(ctx)
		if err != nil {
			return "", fmt.Errorf("Metadata (no topics): %w", err)
		}
		host, port, _ := strings.Cut(e.bootstrap, ":")
		if len(bm.Brokers) != 1 {
			return "", fmt.Errorf("Metadata lists %d brokers, expected 1", len(bm.Brokers))
		}
		b := bm.Brokers[0]
		if b.Host != host || strconv.Itoa(int(b.Port)) != port {
			return "", fmt.Errorf("Metadata: broker %d at %s:%d, expected %s", b.NodeID, b.Host, b.Port, e.bootstrap)
		}
		if bm.Controller != b.NodeID || bm.Cluster == "" {
			return "", fmt.Errorf("Metadata: controller %d (broker %d), cluster id %q", bm.Controller, b.NodeID, bm.Cluster)
		}
		if len(bm.Topics) != 0 {
			return "", fmt.Errorf("Metadata with no topics asked answered %d topics", len(bm.Topics))
		}
		m, err := adm.Metadata(ctx, topic)
		if err != nil {
			return "", fmt.Errorf("Metadata (%s): %w", topic, err)
		}
		if len(m.Topics) != 1 || len(m.Topics[topic].Partitions) != 2 || m.Topics[topic].Err != nil {
			return "", fmt.Errorf("Metadata (%s): %+v", topic, m.Topics)
		}
		for _, p := range m.Topics[topic].Partitions {
			if p.Leader != b.NodeID || p.Err != nil || p.LeaderEpoch < 0 {
				return "", fmt.Errorf("Metadata: %s[%d] leader %d epoch %d err %v", topic, p.Partition, p.Leader, p.LeaderEpoch, p.Err)
			}
		}
		missing := topic + "-missing"
		m, err = adm.Metadata(ctx, missing)
		if err != nil {
			return "", fmt.Errorf("Metadata (%s): %w", missing, err)
		}
		// kadm's Metadata does not ask for auto creation.
		if d := m.Topics[missing]; !errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			return "", fmt.Errorf("Metadata of an absent topic (allow_auto_topic_creation=false): %+v, expected UNKNOWN_TOPIC_OR_PARTITION", d)
		}
		// kadm has no DescribeCluster (60): the raw request, as kmsg builds it.
		dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, cl)
		if err != nil {
			return "", fmt.Errorf("DescribeCluster: %w", err)
		}
		if err := kerr.ErrorForCode(dc.ErrorCode); err != nil {
			return "", fmt.Errorf("DescribeCluster: %w", err)
		}
		if dc.ClusterID != bm.Cluster || len(dc.Brokers) != 1 || dc.ControllerID != b.NodeID ||
			dc.Brokers[0].NodeID != b.NodeID || dc.Brokers[0].Host != host || strconv.Itoa(int(dc.Brokers[0].Port)) != port {
			return "", fmt.Errorf("DescribeCluster: cluster %q brokers %+v controller %d; Metadata said %q, broker %d at %s, controller %d", dc.ClusterID, dc.Brokers, dc.ControllerID, bm.Cluster, b.NodeID, e.bootstrap, bm.Controller)
		}
		return fmt.Sprintf("Metadata: one broker %d at %s, controller, cluster id %s; a topic's 2 partitions led by it; an absent topic UNKNOWN_TOPIC_OR_PARTITION (not created); DescribeCluster agrees", b.NodeID, e.bootstrap, bm.Cluster), nil
	})
}

func kadmLogDirs(ctx context.Context, e *env) (string, error) {
	topic := e.topicName("")
	if err := e.createTopic(ctx, topic, 2, nil); err != nil {
		return "", err
	}
	return e.withAdmin(func(cl *kgo.Client, adm *kadm.Client) (string, error) {
		rs := testRecords(topic, 20)
		for _, r := range rs {
			r.Partition = 0
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			return "", fmt.Errorf("ProduceSync: %w", err)
		}
		all, err := adm.DescribeAllLogDirs(ctx, nil)
		if err != nil {
			return "", fmt.Errorf("DescribeLogDirs: %w", err)
		}
		var dirs []kadm.DescribedLogDir
		for _, d := range all.Sorted() {
			if d.Err != nil {
				return "", fmt.Errorf("DescribeLogDirs: %s: %w", d.Dir, d.Err)
			}
			dirs = append(dirs, d)
		}
		if len(dirs) != 1 {
			return "", fmt.Errorf("DescribeLogDirs answered %d dirs, expected 1", len(dirs))
		}
		d := dirs[0]
		if e.logDir != "" && d.Dir != e.logDir {
			return "", fmt.Errorf("DescribeLogDirs: dir %q, the broker's log.dirs is %q", d.Dir, e.logDir)
		}
		p0, ok0 := d.Topics.Lookup(topic, 0)
		p1, ok1 := d.Topics.Lookup(topic, 1)
		if !ok0 || !ok1 {
			return "", fmt.Errorf("DescribeLogDirs: %s partitions listed %v %v", topic, ok0, ok1)
		}
		// kgo compresses with snappy by default: the 100 KiB value is repetitive.
		if p0.Size < 1000 || p1.Size != 0 {
			return "", fmt.Errorf("DescribeLogDirs: %s[0] size %d (20 records), [1] size %d (empty)", topic, p0.Size, p1.Size)
		}
		if d.TotalBytes <= 0 || d.UsableBytes <= 0 || d.UsableBytes > d.TotalBytes {
			return "", fmt.Errorf("DescribeLogDirs: total bytes %d, usable %d", d.TotalBytes, d.UsableBytes)
		}
		return fmt.Sprintf("DescribeLogDirs: one dir %s; %s[0] %d bytes, [1] 0 bytes; volume %d/%d bytes usable", d.Dir, topic, p0.Size, d.UsableBytes, d.TotalBytes), nil
	})
}

func kadmDeleteTopics(ctx context.Context, e *env) (string, error) {
	topic := e.topicName("")
	if err := e.createTopic(ctx, topic, 2, nil); err != nil {
		return "", err
	}
	return e.withAdmin(func(cl *kgo.Client, adm *kadm.Client) (string, error) {
		rs := testRecords(topic, 10)
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			return "", fmt.Errorf("ProduceSync: %w", err)
		}
		dr, err := adm.DeleteTopics(ctx, topic)
		if err != nil {
			return "", fmt.Errorf("DeleteTopics: %w", err)
		}
		if r := dr[topic]; r.Err != nil {
			return "", fmt.Errorf("DeleteTopics %s: %w (%s)", topic, r.Err, r.ErrMessage)
		}
		var lt kadm.TopicDetails
		gone := waitFor(ctx, 10*time.Second, func() bool {
			lt, err = adm.ListTopics(ctx)
			_, listed := lt[topic]
			return err == nil && !listed
		})
		if err != nil {
			return "", fmt.Errorf("ListTopics: %w", err)
		}
		if !gone {
			return "", fmt.Errorf("ListTopics still lists %s 10 s after DeleteTopics", topic)
		}
		dr, err = adm.DeleteTopics(ctx, topic)
		if err != nil {
			return "", fmt.Errorf("DeleteTopics (again): %w", err)
		}
		if r := dr[topic]; !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			return "", fmt.Errorf("DeleteTopics of a deleted topic answered %v, expected UNKNOWN_TOPIC_OR_PARTITION", r.Err)
		}
		// The name can be used again, for a new, empty topic.
		if err := e.createTopic(ctx, topic, 1, nil); err != nil {
			return "", fmt.Errorf("re-creating the deleted topic: %w", err)
		}
		fresh, err := e.newKgo()
		if err != nil {
			return "", err
		}
		defer fresh.Close()
		end, err := kadm.NewClient(fresh).ListEndOffsets(ctx, topic)
		if err != nil {
			return "", fmt.Errorf("ListOffsets: %w", err)
		}
		if len(end[topic]) != 1 {
			return "", fmt.Errorf("the re-created topic has %d partitions, expected 1: %+v", len(end[topic]), end[topic])
		}
		if o, _ := end.Lookup(topic, 0); o.Err != nil || o.Offset != 0 {
			return "", fmt.Errorf("the re-created topic's end offset is %d (%v), expected 0", o.Offset, o.Err)
		}
		return "DeleteTopics removed a topic with data (ListTopics no longer lists it), again: UNKNOWN_TOPIC_OR_PARTITION; the name made anew is an empty 1-partition topic", nil
	})
}
