package main

// IBM's sarama: SyncProducer, AsyncProducer, compression, the partition consumer, the
// ConsumerGroup and ClusterAdmin, each with sarama's default protocol version (2.8) and with
// the newest it knows (sarama.MaxVersion, 4.3.1 in v1.61.1).

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type saramaVersion struct {
	label   string
	version *sarama.KafkaVersion // nil: sarama's default
}

func init() {
	max := sarama.MaxVersion
	for _, v := range []saramaVersion{{"default", nil}, {max.String(), &max}} {
		v := v
		for name, fn := range map[string]func(context.Context, *env, saramaVersion) (string, error){
			"sarama-sync-producer":      saramaSyncProducer,
			"sarama-async-producer":     saramaAsyncProducer,
			"sarama-compression":        saramaCompression,
			"sarama-partition-consumer": saramaPartitionConsumer,
			"sarama-consumer-group":     saramaConsumerGroup,
			"sarama-admin":              saramaAdmin,
		} {
			fn := fn
			register(name+"@"+v.label, func(ctx context.Context, e *env) (string, error) { return fn(ctx, e, v) })
		}
	}
}

// config is sarama's default configuration, with the version set when v names one.
func (v saramaVersion) config() *sarama.Config {
	if verbose {
		sarama.Logger = log.New(os.Stderr, "sarama ", log.Lmicroseconds)
	}
	cfg := sarama.NewConfig()
	if v.version != nil {
		cfg.Version = *v.version
	}
	cfg.ClientID = "spate-go-check"
	return cfg
}

func (v saramaVersion) describe(cfg *sarama.Config) string {
	if v.version == nil {
		return fmt.Sprintf("sarama's default version %s", cfg.Version)
	}
	return fmt.Sprintf("version %s", cfg.Version)
}

// toSarama turns the test records into sarama messages: a null key or value stays null.
func toSarama(rs []*kgo.Record) []*sarama.ProducerMessage {
	ms := make([]*sarama.ProducerMessage, len(rs))
	for i, r := range rs {
		m := &sarama.ProducerMessage{Topic: r.Topic}
		if r.Key != nil {
			m.Key = sarama.ByteEncoder(r.Key)
		}
		if r.Value != nil {
			m.Value = sarama.ByteEncoder(r.Value)
		}
		for _, h := range r.Headers {
			m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h.Key), Value: h.Value})
		}
		ms[i] = m
	}
	return ms
}

// producedExps: what sarama says it wrote (partition, offset) with the records' contents.
func producedExps(rs []*kgo.Record, ms []*sarama.ProducerMessage) ([]expRecord, error) {
	out := make([]expRecord, len(rs))
	next := map[int32]int64{}
	for i, r := range rs {
		m := ms[i]
		if m.Offset != next[m.Partition] {
			return nil, fmt.Errorf("message %d (key %s) got %s[%d]@%d, expected offset %d (dense, in send order)", i, showBytes(r.Key), m.Topic, m.Partition, m.Offset, next[m.Partition])
		}
		next[m.Partition]++
		out[i] = expRecord{partition: m.Partition, offset: m.Offset, key: r.Key, value: r.Value, headers: r.Headers}
	}
	return out, nil
}

func saramaSyncProducer(ctx context.Context, e *env, v saramaVersion) (string, error) {
	topic := e.topicName("")
	if err := e.createTopic(ctx, topic, 3, nil); err != nil {
		return "", err
	}
	cfg := v.config()
	cfg.Producer.Return.Successes = true // a SyncProducer needs it
	p, err := sarama.NewSyncProducer([]string{e.bootstrap}, cfg)
	if err != nil {
		return "", fmt.Errorf("NewSyncProducer: %w", err)
	}
	defer p.Close()
	rs := testRecords(topic, 60)
	ms := toSarama(rs)
	for i, m := range ms[:20] {
		part, off, err := p.SendMessage(m)
		if err != nil {
			return "", fmt.Errorf("SendMessage %d: %w", i, err)
		}
		if part != m.Partition || off != m.Offset {
			return "", fmt.Errorf("SendMessage %d returned %d@%d, the message holds %d@%d", i, part, off, m.Partition, m.Offset)
		}
	}
	if err := p.SendMessages(ms[20:]); err != nil {
		return "", fmt.Errorf("SendMessages (40): %w", err)
	}
	exps, err := producedExps(rs, ms)
	if err != nil {
		return "", err
	}
	got, err := e.readAll(ctx, topic, 3, len(rs))
	if err != nil {
		return "", fmt.Errorf("reading back with kgo: %w", err)
	}
	if err := verifyRead(exps, got); err != nil {
		return "", fmt.Errorf("reading back with kgo: %w", err)
	}
	return fmt.Sprintf("%s: SendMessage x20 and SendMessages x40 (keys, null key/value, headers) read back identical by kgo (%s)", v.describe(cfg), partitionCounts(got)), nil
}

func saramaAsyncProducer(ctx context.Context, e *env, v saramaVersion) (string, error) {
	topic := e.topicName("")
	if err := e.createTopic(ctx, topic, 3, nil); err != nil {
		return "", err
	}
	cfg := v.config()
	cfg.Producer.Return.Successes = true // to learn each message's offset
	p, err := sarama.NewAsyncProducer([]string{e.bootstrap}, cfg)
	if err != nil {
		return "", fmt.Errorf("NewAsyncProducer: %w", err)
	}
	defer p.Close()
	rs := testRecords(topic, 300)
	ms := toSarama(rs)
	for i, m := range ms {
		m.Metadata = i
	}
	go func() {
		for _, m := range ms {
			select {
			case p.Input() <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	var errs []error
	for n := 0; n < len(ms); n++ {
		select {
		case <-p.Successes():
		case pe := <-p.Errors():
			errs = append(errs, fmt.Errorf("message %v: %w", pe.Msg.Metadata, pe.Err))
		case <-ctx.Done():
			return "", fmt.Errorf("%d of %d messages acknowledged before the deadline", n, len(ms))
		}
	}
	if len(errs) > 0 {
		return "", fmt.Errorf("%d produce errors: %w", len(errs), errors.Join(errs...))
	}
	exps, err := producedExps(rs, ms)
	if err != nil {
		return "", err
	}
	got, err := e.readAll(ctx, topic, 3, len(rs))
	if err != nil {
		return "", fmt.Errorf("reading back with kgo: %w", err)
	}
	if err := verifyRead(exps, got); err != nil {
		return "", fmt.Errorf("reading back with kgo: %w", err)
	}
	return fmt.Sprintf("%s: 300 messages through Input(), each acknowledged on Successes() with dense offsets in send order, read back identical by kgo (%s)", v.describe(cfg), partitionCounts(got)), nil
}

func saramaCompression(ctx context.Context, e *env, v saramaVersion) (string, error) {
	var done []string
	for _, c := range []struct {
		codec sarama.CompressionCodec
		id    uint8
	}{
		{sarama.CompressionNone, 0}, {sarama.CompressionGZIP, 1}, {sarama.CompressionSnappy, 2},
		{sarama.CompressionLZ4, 3}, {sarama.CompressionZSTD, 4},
	} {
		topic := e.topicName(c.codec.String())
		if err := e.createTopic(ctx, topic, 1, nil); err != nil {
			return "", err
		}
		cfg := v.config()
		cfg.Producer.Return.Successes = true
		cfg.Producer.Compression = c.codec
		p, err := sarama.NewSyncProducer([]string{e.bootstrap}, cfg)
		if err != nil {
			return "", fmt.Errorf("NewSyncProducer (%s): %w", c.codec, err)
		}
		rs := testRecords(topic, 30)
		ms := toSarama(rs)
		err = p.SendMessages(ms)
		p.Close()
		if err != nil {
			return "", fmt.Errorf("SendMessages (%s): %w", c.codec, err)
		}
		exps, err := producedExps(rs, ms)
		if err != nil {
			return "", fmt.Errorf("%s: %w", c.codec, err)
		}
		got, err := e.readAll(ctx, topic, 1, len(rs))
		if err != nil {
			return "", fmt.Errorf("%s: reading back with kgo: %w", c.codec, err)
		}
		if err := verifyRead(exps, got); err != nil {
			return "", fmt.Errorf("%s: reading back with kgo: %w", c.codec, err)
		}
		for _, g := range got {
			if a := g.Attrs.CompressionType(); a != c.id {
				return "", fmt.Errorf("%s: record @%d stored with compression attribute %d, expected %d (compression.type=producer keeps the producer's codec)", c.codec, g.Offset, a, c.id)
			}
		}
		done = append(done, c.codec.String())
	}
	return fmt.Sprintf("%s: 30 messages each with %v read back identical by kgo, stored with the producer's codec", v.describe(v.config()), done), nil
}

func sameSaramaMessage(want expRecord, m *sarama.ConsumerMessage) error {
	where := fmt.Sprintf("%s[%d]@%d", m.Topic, m.Partition, m.Offset)
	if m.Partition != want.partition || m.Offset != want.offset {
		return fmt.Errorf("%s: expected %d@%d", where, want.partition, want.offset)
	}
	if !bytesMatch(want.key, m.Key) {
		return fmt.Errorf("%s: key %s, expected %s", where, showBytes(m.Key), showBytes(want.key))
	}
	if !bytesMatch(want.value, m.Value) {
		return fmt.Errorf("%s: value %s, expected %s", where, showBytes(m.Value), showBytes(want.value))
	}
	if len(m.Headers) != len(want.headers) {
		return fmt.Errorf("%s: %d headers, expected %d", where, len(m.Headers), len(want.headers))
	}
	for i, h := range want.headers {
		g := m.Headers[i]
		if string(g.Key) != h.Key || !bytesMatch(h.Value, g.Value) {
			return fmt.Errorf("%s: header %d is %q=%s, expected %q=%s", where, i, g.Key, showBytes(g.Value), h.Key, showBytes(h.Value))
		}
	}
	if !want.timestamp.IsZero() && !m.Timestamp.Equal(want.timestamp) {
		return fmt.Errorf("%s: timestamp %d, expected %d", where, m.Timestamp.UnixMilli(), want.timestamp.UnixMilli())
	}
	return nil
}

// readPartition reads want messages from a partition consumer, then waits a little for extras.
func readPartition(ctx context.Context, pc sarama.PartitionConsumer, want []expRecord) error {
	for i := 0; i < len(want); i++ {
		select {
		case m := <-pc.Messages():
			if err := sameSaramaMessage(want[i], m); err != nil {
				return err
			}
		case err := <-pc.Errors():
			return fmt.Errorf("partition consumer: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("read %d of %d messages before the deadline", i, len(want))
		}
	}
	select {
	case m := <-pc.Messages():
		return fmt.Errorf("an extra message %s[%d]@%d", m.Topic, m.Partition, m.Offset)
	case <-time.After(300 * time.Millisecond):
	}
	return nil
}

func saramaPartitionConsumer(ctx context.Context, e *env, v saramaVersion) (string, error) {
	topic := e.topicName("")
	if err := e.createTopic(ctx, topic, 1, nil); err != nil {
		return "", err
	}
	prod, err := e.newKgo()
	if err != nil {
		return "", err
	}
	defer prod.Close()
	rs := testRecords(topic, 30)
	if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		return "", fmt.Errorf("ProduceSync (kgo): %w", err)
	}
	cfg := v.config()
	cfg.Consumer.Return.Errors = true
	c, err := sarama.NewConsumer([]string{e.bootstrap}, cfg)
	if err != nil {
		return "", fmt.Errorf("NewConsumer: %w", err)
	}
	defer c.Close()
	parts, err := c.Partitions(topic)
	if err != nil || len(parts) != 1 {
		return "", fmt.Errorf("Partitions(%s): %v %v, expected [0]", topic, parts, err)
	}
	exps := expsOf(rs)
	pc, err := c.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		return "", fmt.Errorf("ConsumePartition(oldest): %w", err)
	}
	if err := readPartition(ctx, pc, exps); err != nil {
		pc.Close()
		return "", fmt.Errorf("from the oldest offset: %w", err)
	}
	if hw := pc.HighWaterMarkOffset(); hw != 30 {
		pc.Close()
		return "", fmt.Errorf("the partition consumer's high watermark is %d, expected 30", hw)
	}
	pc.Close()
	pc, err = c.ConsumePartition(topic, 0, 12)
	if err != nil {
		return "", fmt.Errorf("ConsumePartition(12): %w", err)
	}
	if err := readPartition(ctx, pc, exps[12:]); err != nil {
		pc.Close()
		return "", fmt.Errorf("from offset 12: %w", err)
	}
	pc.Close()
	pc, err = c.ConsumePartition(topic, 0, sarama.OffsetNewest)
	if err != nil {
		return "", fmt.Errorf("ConsumePartition(newest): %w", err)
	}
	defer pc.Close()
	time.Sleep(200 * time.Millisecond)
	more := testRecords(topic, 3)
	if err := prod.ProduceSync(ctx, more...).FirstErr(); err != nil {
		return "", fmt.Errorf("ProduceSync (kgo): %w", err)
	}
	if err := readPartition(ctx, pc, expsOf(more)); err != nil {
		return "", fmt.Errorf("from the newest offset: %w", err)
	}
	if _, err := c.ConsumePartition(topic, 0, 1000); !errors.Is(err, sarama.ErrOffsetOutOfRange) {
		return "", fmt.Errorf("ConsumePartition at offset 1000 of 33: %v, expected %v", err, sarama.ErrOffsetOutOfRange)
	}
	return fmt.Sprintf("%s: the partition consumer read 30 kgo records from the oldest offset (contents, headers, timestamps), 18 from offset 12, 3 live from the newest; offset 1000 is out of range", v.describe(cfg)), nil
}

// groupHandler is one sarama ConsumerGroup member.
type groupHandler struct {
	name     string
	mu       sync.Mutex
	assigned map[int32]bool
	sess     sarama.ConsumerGroupSession
	recs     []*sarama.ConsumerMessage
	all      *saramaSet
}

type saramaSet struct {
	mu   sync.Mutex
	seen map[tpo]int
	n    int
}

func (s *saramaSet) add(m *sarama.ConsumerMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[tpo]int{}
	}
	s.seen[tpo{tp{m.Topic, m.Partition}, m.Offset}]++
	s.n++
}

func (s *saramaSet) duplicates() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var d []string
	for k, n := range s.seen {
		if n != 1 {
			d = append(d, fmt.Sprintf("%s[%d]@%d x%d", k.topic, k.partition, k.offset, n))
		}
	}
	return strings.Join(d, " ")
}

func (s *saramaSet) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func (h *groupHandler) Setup(sess sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sess = sess
	h.assigned = map[int32]bool{}
	for _, ps := range sess.Claims() {
		for _, p := range ps {
			h.assigned[p] = true
		}
	}
	return nil
}

func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.assigned = map[int32]bool{}
	return nil
}

func (h *groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			h.mu.Lock()
			h.recs = append(h.recs, m)
			h.mu.Unlock()
			h.all.add(m)
			sess.MarkMessage(m, "")
		case <-sess.Context().Done():
			return nil
		}
	}
}

func (h *groupHandler) partitions() []int32 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return sortedPartitions(h.assigned)
}

type saramaMember struct {
	h    *groupHandler
	g    sarama.ConsumerGroup
	stop context.CancelFunc
	done chan struct{}
	mu   sync.Mutex
	errs []error
}

func (e *env) startSaramaMember(ctx context.Context, v saramaVersion, name, group, topic string, all *saramaSet) (*saramaMember, error) {
	cfg := v.config()
	cfg.Consumer.Return.Errors = true
	// From the oldest offset when the group has no commit: a member that resumes from its
	// commits then shows that they were used.
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	g, err := sarama.NewConsumerGroup([]string{e.bootstrap}, group, cfg)
	if err != nil {
		return nil, fmt.Errorf("NewConsumerGroup: %w", err)
	}
	mctx, cancel := context.WithCancel(ctx)
	m := &saramaMember{h: &groupHandler{name: name, assigned: map[int32]bool{}, all: all}, g: g, stop: cancel, done: make(chan struct{})}
	go func() {
		for err := range g.Errors() {
			m.mu.Lock()
			m.errs = append(m.errs, err)
			m.mu.Unlock()
		}
	}()
	go func() {
		defer close(m.done)
		for i := 0; i < 100 && mctx.Err() == nil; i++ {
			if err := g.Consume(mctx, []string{topic}, m.h); err != nil && mctx.Err() == nil {
				m.mu.Lock()
				m.errs = append(m.errs, fmt.Errorf("Consume: %w", err))
				m.mu.Unlock()
				time.Sleep(100 * time.Millisecond)
			}
		}
	}()
	return m, nil
}

func (m *saramaMember) errors() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %w", m.h.name, errors.Join(m.errs...))
}

func (m *saramaMember) close() error {
	m.stop()
	<-m.done
	return m.g.Close()
}

func saramaConsumerGroup(ctx context.Context, e *env, v saramaVersion) (string, error) {
	topic := e.topicName("")
	group := topic + "-g"
	if err := e.createTopic(ctx, topic, 4, nil); err != nil {
		return "", err
	}
	var all saramaSet
	a, err := e.startSaramaMember(ctx, v, "member A", group, topic, &all)
	if err != nil {
		return "", err
	}
	defer a.close()
	b, err := e.startSaramaMember(ctx, v, "member B", group, topic, &all)
	if err != nil {
		return "", err
	}
	defer b.close()
	t0 := time.Now()
	balanced := func() bool {
		pa, pb := a.h.partitions(), b.h.partitions()
		seen := map[int32]bool{}
		for _, p := range append(pa, pb...) {
			seen[p] = true
		}
		return len(pa) == 2 && len(pb) == 2 && len(seen) == 4
	}
	if !waitFor(ctx, 40*time.Second, balanced) {
		return "", fmt.Errorf("the two members did not share the 4 partitions within 40 s: A %v, B %v; errors: %v %v", a.h.partitions(), b.h.partitions(), a.errors(), b.errors())
	}
	pa, pb := a.h.partitions(), b.h.partitions()
	logf("balanced after %s: A %v, B %v", time.Since(t0).Round(time.Millisecond), pa, pb)
	prod, err := e.newKgo(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return "", err
	}
	defer prod.Close()
	rs := testRecords(topic, 200)
	for i, r := range rs {
		r.Partition = int32(i % 4)
	}
	if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		return "", fmt.Errorf("ProduceSync (kgo): %w", err)
	}
	if !waitFor(ctx, 30*time.Second, func() bool { return all.count() >= 200 }) {
		return "", fmt.Errorf("the group read %d of 200 records in 30 s; errors: %v %v", all.count(), a.errors(), b.errors())
	}
	time.Sleep(700 * time.Millisecond)
	for _, m := range []*saramaMember{a, b} {
		if err := m.errors(); err != nil {
			return "", err
		}
	}
	byPos := map[tpo]expRecord{}
	for _, r := range rs {
		byPos[tpo{tp{topic, r.Partition}, r.Offset}] = expFromProduced(r)
	}
	for _, m := range []*saramaMember{a, b} {
		mine := map[int32]bool{}
		ps := pa
		if m == b {
			ps = pb
		}
		for _, p := range ps {
			mine[p] = true
		}
		m.h.mu.Lock()
		recs := append([]*sarama.ConsumerMessage{}, m.h.recs...)
		m.h.mu.Unlock()
		if len(recs) != 100 {
			return "", fmt.Errorf("%s (partitions %v) read %d records, expected 100", m.h.name, ps, len(recs))
		}
		for _, r := range recs {
			if !mine[r.Partition] {
				return "", fmt.Errorf("%s read partition %d, not one of its %v", m.h.name, r.Partition, ps)
			}
			w, ok := byPos[tpo{tp{topic, r.Partition}, r.Offset}]
			if !ok {
				return "", fmt.Errorf("%s read %s[%d]@%d, which was not produced", m.h.name, r.Topic, r.Partition, r.Offset)
			}
			if err := sameSaramaMessage(w, r); err != nil {
				return "", fmt.Errorf("%s: %w", m.h.name, err)
			}
		}
		if now := m.h.partitions(); fmt.Sprint(now) != fmt.Sprint(ps) {
			return "", fmt.Errorf("%s's assignment moved while reading: %v then %v", m.h.name, ps, now)
		}
	}
	if d := all.duplicates(); d != "" {
		return "", fmt.Errorf("records read more than once: %s", d)
	}
	for _, m := range []*saramaMember{a, b} {
		m.h.mu.Lock()
		sess := m.h.sess
		m.h.mu.Unlock()
		sess.Commit()
	}
	if err := expectOffsets(ctx, kadm.NewClient(prod), group, topic, map[int32]int64{0: 50, 1: 50, 2: 50, 3: 50}, nil); err != nil {
		return "", fmt.Errorf("after the members' commits: %w", err)
	}
	for _, m := range []*saramaMember{a, b} {
		if err := m.close(); err != nil {
			return "", fmt.Errorf("%s: Close: %w", m.h.name, err)
		}
		if err := m.errors(); err != nil {
			return "", err
		}
	}
	more := testRecords(topic, 40)
	for i, r := range more {
		r.Partition = int32(i % 4)
	}
	if err := prod.ProduceSync(ctx, more...).FirstErr(); err != nil {
		return "", fmt.Errorf("ProduceSync (kgo): %w", err)
	}
	var all2 saramaSet
	c, err := e.startSaramaMember(ctx, v, "member C", group, topic, &all2)
	if err != nil {
		return "", err
	}
	defer c.close()
	if !waitFor(ctx, 30*time.Second, func() bool { return all2.count() >= 40 }) {
		return "", fmt.Errorf("the resumed member read %d of 40 new records in 30 s; errors: %v", all2.count(), c.errors())
	}
	time.Sleep(700 * time.Millisecond)
	c.h.mu.Lock()
	recs := append([]*sarama.ConsumerMessage{}, c.h.recs...)
	c.h.mu.Unlock()
	if len(recs) != 40 {
		return "", fmt.Errorf("the resumed member read %d records, expected the 40 new ones", len(recs))
	}
	newPos := map[tpo]expRecord{}
	for _, r := range more {
		newPos[tpo{tp{topic, r.Partition}, r.Offset}] = expFromProduced(r)
	}
	for _, r := range recs {
		w, ok := newPos[tpo{tp{topic, r.Partition}, r.Offset}]
		if !ok {
			return "", fmt.Errorf("the resumed member read %s[%d]@%d, not one of the 40 new records (offsets 50..59)", r.Topic, r.Partition, r.Offset)
		}
		if err := sameSaramaMessage(w, r); err != nil {
			return "", fmt.Errorf("resumed member: %w", err)
		}
	}
	if err := c.errors(); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s: two members shared 4 partitions (range: A %v, B %v), read 200 records each once, committed 50 per partition; a new member resumed and read exactly the 40 new", v.describe(v.config()), pa, pb), nil
}

func saramaAdmin(ctx context.Context, e *env, v saramaVersion) (string, error) {
	cfg := v.config()
	adm, err := sarama.NewClusterAdmin([]string{e.bootstrap}, cfg)
	if err != nil {
		return "", fmt.Errorf("NewClusterAdmin: %w", err)
	}
	defer adm.Close()
	topic := e.topicName("")
	retention := "3600000"
	if err := adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1, ConfigEntries: map[string]*string{"retention.ms": &retention}}, false); err != nil {
		return "", fmt.Errorf("CreateTopic: %w", err)
	}
	err = adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false)
	var te *sarama.TopicError
	if !errors.As(err, &te) || te.Err != sarama.ErrTopicAlreadyExists {
		return "", fmt.Errorf("CreateTopic of an existing topic: %v, expected %v", err, sarama.ErrTopicAlreadyExists)
	}
	topics, err := adm.ListTopics()
	if err != nil {
		return "", fmt.Errorf("ListTopics: %w", err)
	}
	d, ok := topics[topic]
	if !ok || d.NumPartitions != 3 || d.ReplicationFactor != 1 {
		return "", fmt.Errorf("ListTopics: %s is %+v (listed %v), expected 3 partitions, replication factor 1", topic, d, ok)
	}
	if r := d.ConfigEntries["retention.ms"]; r == nil || *r != retention {
		return "", fmt.Errorf("ListTopics: %s's config entries have retention.ms %v, expected %s", topic, r, retention)
	}
	entries, err := adm.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if err != nil {
		return "", fmt.Errorf("DescribeConfig: %w", err)
	}
	found := false
	for _, c := range entries {
		if c.Name == "retention.ms" {
			found = true
			if c.Value != retention || c.Default || (cfg.Version.IsAtLeast(sarama.V1_1_0_0) && c.Source != sarama.SourceTopic) {
				return "", fmt.Errorf("DescribeConfig: retention.ms is %+v, expected %s from the topic", c, retention)
			}
		}
	}
	if !found {
		return "", fmt.Errorf("DescribeConfig: no retention.ms among %d entries", len(entries))
	}
	brokers, controller, err := adm.DescribeCluster()
	if err != nil {
		return "", fmt.Errorf("DescribeCluster: %w", err)
	}
	if len(brokers) != 1 || brokers[0].Addr() != e.bootstrap || brokers[0].ID() != controller {
		return "", fmt.Errorf("DescribeCluster: %d brokers (first %s, id %d), controller %d", len(brokers), brokers[0].Addr(), brokers[0].ID(), controller)
	}
	if err := adm.DeleteTopic(topic); err != nil {
		return "", fmt.Errorf("DeleteTopic: %w", err)
	}
	gone := waitFor(ctx, 10*time.Second, func() bool {
		topics, err = adm.ListTopics()
		_, listed := topics[topic]
		return err == nil && !listed
	})
	if err != nil {
		return "", fmt.Errorf("ListTopics after DeleteTopic: %w", err)
	}
	if !gone {
		return "", fmt.Errorf("ListTopics still lists %s 10 s after DeleteTopic", topic)
	}
	if err := adm.DeleteTopic(topic); !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
		return "", fmt.Errorf("DeleteTopic of a deleted topic: %v, expected %v", err, sarama.ErrUnknownTopicOrPartition)
	}
	return fmt.Sprintf("%s: CreateTopic (3 partitions, retention.ms), again: TOPIC_ALREADY_EXISTS; ListTopics and DescribeConfig show it; DescribeCluster one broker, the controller; DeleteTopic, gone from ListTopics, again: UNKNOWN_TOPIC_OR_PARTITION", v.describe(cfg)), nil
}
