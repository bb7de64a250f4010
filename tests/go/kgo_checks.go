package main

// franz-go's kgo: produce, consume, groups, transactions, idempotence.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() {
	register("kgo-produce-sync", kgoProduceSync)
	register("kgo-produce-async", kgoProduceAsync)
	for _, c := range []struct {
		name  string
		codec kgo.CompressionCodec
		id    uint8
	}{
		{"none", kgo.NoCompression(), 0},
		{"gzip", kgo.GzipCompression(), 1},
		{"snappy", kgo.SnappyCompression(), 2},
		{"lz4", kgo.Lz4Compression(), 3},
		{"zstd", kgo.ZstdCompression(), 4},
	} {
		c := c
		register("kgo-compression-"+c.name, func(ctx context.Context, e *env) (string, error) {
			return kgoCompression(ctx, e, c.name, c.codec, c.id)
		})
	}
	register("kgo-consume-assign", kgoConsumeAssign)
	register("kgo-group", kgoGroup)
	register("kgo-txn", kgoTxn)
	register("kgo-txn-group-session", kgoTxnGroupSession)
	register("kgo-idempotent", kgoIdempotent)
}

func partitionCounts(rs []*kgo.Record) string {
	c := map[int32]int{}
	for _, r := range rs {
		c[r.Partition]++
	}
	var ps []int
	for p := range c {
		ps = append(ps, int(p))
	}
	sort.Ints(ps)
	var parts []string
	for _, p := range ps {
		parts = append(parts, fmt.Sprintf("p%d:%d", p, c[int32(p)]))
	}
	return strings.Join(parts, " ")
}

func expsOf(rs []*kgo.Record) []expRecord {
	out := make([]expRecord, len(rs))
	for i, r := range rs {
		out[i] = expFromProduced(r)
	}
	return out
}

// kgoProduceSync: ProduceSync one record at a time and then many at once, default
// (key-hash) partitioner over 3 partitions; read back by assignment.
func kgoProduceSync(ctx context.Context, e *env) (string, error) {
	topic := e.topicName("")
	if err := e.createTopic(ctx, topic, 3, nil); err != nil {
		return "", err
	}
	cl, err := e.newKgo()
	if err != nil {
		return "", err
	}
	defer cl.Close()
	rs := testRecords(topic, 60)
	for _, r := range rs[:10] {
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			return "", fmt.Errorf("ProduceSync (one record, key %s): %w", showBytes(r.Key), err)
		}
	}
	if err := cl.ProduceSync(ctx, rs[10:]...).FirstErr(); err != nil {
		return "", fmt.Errorf("ProduceSync (50 records): %w", err)
	}
	if err := checkOffsetsDense(rs); err != nil {
		return "", err
	}
	got, err := e.readAll(ctx, topic, 3, len(rs))
	if err != nil {
		return "", err
	}
	if err := verifyRead(expsOf(rs), got); err != nil {
		return "", err
	}
	if c := partitionCounts(got); strings.Count(c, ":") < 2 {
		return "", fmt.Errorf("60 distinct keys went to too few partitions: %s", c)
	}
	return fmt.Sprintf("60 records (keys, a null key, empty/null/100 KiB values, headers) produced synchronously, read back by assignment identical with dense offsets (%s)", partitionCounts(got)), nil
}

// kgoProduceAsync: Produce with promises, Flush, offsets dense per partition, read back.
func kgoProduceAsync(ctx context.Context, e *env) (string, error) {
	topic := e.topicName("")
	if err := e.createTopic(ctx, topic, 3, nil); err != nil {
		return "", err
	}
	cl, err := e.newKgo()
	if err != nil {
		return "", err
	}
	defer cl.Close()
	rs := testRecords(topic, 500)
	var mu sync.Mutex
	var errs []error
	done := 0
	for _, r := range rs {
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			done++
			if err != nil {
				errs = append(errs, fmt.Errorf("produce key %s: %w", showBytes(r.Key), err))
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return "", fmt.Errorf("Flush: %w", err)
	}
	mu.Lock()
	if done != len(rs) || len(errs) > 0 {
		mu.Unlock()
		return "", fmt.Errorf("%d of %d promises called, %d errors: %v", done, len(rs), len(errs), errors.Join(errs...))
	}
	mu.Unlock()
	if err := checkOffsetsDense(rs); err != nil {
		return "", err
	}
	got, err := e.readAll(ctx, topic, 3, len(rs))
	if err != nil {
		return "", err
	}
	if err := verifyRead(expsOf(rs), got); err != nil {
		return "", err
	}
	return fmt.Sprintf("500 records produced asynchronously (promises, Flush), offsets dense in produce order, read back identical (%s)", partitionCounts(got)), nil
}

// kgoCompression: one batch compressed with codec; the records read back are the same and
// the stored batch carries the codec (the topic's compression.type is Kafka's default,
// producer, so the broker keeps the producer's codec).
func kgoCompression(ctx context.Context, e *env, name string, codec kgo.CompressionCodec, id uint8) (string, error) {
	topic := e.topicName("")
	if err := e.createTopic(ctx, topic, 1, nil); err != nil {
		return "", err
	}
	// Manual flushing makes the 60 records one batch, which compresses (kgo sends a batch
	// uncompressed when compressing would not make it smaller).
	cl, err := e.newKgo(kgo.ProducerBatchCompression(codec), kgo.ManualFlushing())
	if err != nil {
		return "", err
	}
	defer cl.Close()
	rs := testRecords(topic, 60)
	var mu sync.Mutex
	var perr error
	for _, r := range rs {
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil && perr == nil {
				perr = fmt.Errorf("produce (%s): %w", name, err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return "", fmt.Errorf("Flush: %w", err)
	}
	if perr != nil {
		return "", perr
	}
	if err := checkOffsetsDense(rs); err != nil {
		return "", err
	}
	got, err := e.readAll(ctx, topic, 1, len(rs))
	if err != nil {
		return "", err
	}
	if err := verifyRead(expsOf(rs), got); err != nil {
		return "", err
	}
	for _, g := range got {
		if c := g.Attrs.CompressionType(); c != id {
			return "", fmt.Errorf("record @%d was stored in a batch with compression type %d, the producer sent %d (%s); Kafka keeps the producer's codec with compression.type=producer", g.Offset, c, id, name)
		}
	}
	return fmt.Sprintf("one %s batch of 60 records read back identical, stored with the producer's codec (attribute %d)", name, id), nil
}

// kgoConsumeAssign: ConsumePartitions at an exact offset and relative to the end, a live
// tail, and ConsumeTopics without a group from the start.
func kgoConsumeAssign(ctx context.Context, e *env) (string, error) {
	topic := e.topicName("")
	if err := e.createTopic(ctx, topic, 2, nil); err != nil {
		return "", err
	}
	prod, err := e.newKgo(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return "", err
	}
	defer prod.Close()
	rs := testRecords(topic, 40)
	for i, r := range rs {
		r.Partition = int32(i / 20)
	}
	if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		return "", fmt.Errorf("ProduceSync: %w", err)
	}
	if err := checkOffsetsDense(rs); err != nil {
		return "", err
	}
	cons, err := e.newKgo(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {
		0: kgo.NewOffset().At(5),
		1: kgo.NewOffset().AtEnd().Relative(-3),
	}}))
	if err != nil {
		return "", err
	}
	defer cons.Close()
	var want []expRecord
	for _, r := range rs {
		if (r.Partition == 0 && r.Offset >= 5) || (r.Partition == 1 && r.Offset >= 17) {
			want = append(want, expFromProduced(r))
		}
	}
	t0 := time.Now()
	got, err := collect(ctx, cons, len(want), 300*time.Millisecond)
	logf("p0 from offset 5, p1 from end-3: %d records in %s", len(got), time.Since(t0).Round(time.Millisecond))
	if err != nil {
		return "", fmt.Errorf("p0 from offset 5, p1 from end-3: %w", err)
	}
	if err := verifyRead(want, got); err != nil {
		return "", fmt.Errorf("p0 from offset 5, p1 from end-3: %w", err)
	}
	// The live tail: two more records on p1 reach the same consumer.
	more := testRecords(topic, 2)
	for _, r := range more {
		r.Partition = 1
	}
	if err := prod.ProduceSync(ctx, more...).FirstErr(); err != nil {
		return "", fmt.Errorf("ProduceSync: %w", err)
	}
	t0 = time.Now()
	got2, err := collect(ctx, cons, 2, 300*time.Millisecond)
	logf("the tail came in %s", time.Since(t0).Round(time.Millisecond))
	if err != nil {
		return "", fmt.Errorf("tail: %w", err)
	}
	if err := verifyRead(expsOf(more), got2); err != nil {
		return "", fmt.Errorf("tail: %w", err)
	}
	if more[0].Offset != 20 {
		return "", fmt.Errorf("the tail record got offset %d, expected 20", more[0].Offset)
	}
	// ConsumeTopics without a group starts at the start (kgo's default reset offset).
	all, err := e.newKgo(kgo.ConsumeTopics(topic))
	if err != nil {
		return "", err
	}
	defer all.Close()
	t0 = time.Now()
	got3, err := collect(ctx, all, 42, 300*time.Millisecond)
	logf("ConsumeTopics: %d records in %s", len(got3), time.Since(t0).Round(time.Millisecond))
	if err != nil {
		return "", fmt.Errorf("ConsumeTopics: %w", err)
	}
	if err := verifyRead(append(expsOf(rs), expsOf(more)...), got3); err != nil {
		return "", fmt.Errorf("ConsumeTopics: %w", err)
	}
	return "ConsumePartitions at offset 5 (15 records) and at end-3 (3), a live tail (2), ConsumeTopics without a group (42): each exact", nil
}

// groupMember is one kgo group consumer with a poll loop and its assignment.
type groupMember struct {
	name     string
	cl       *kgo.Client
	mu       sync.Mutex
	assigned map[int32]bool
	recs     recordSet
	stop     chan struct{}
	done     chan struct{}
	pollErr  error
}

func (e *env) startMember(ctx context.Context, name, group, topic string, all *recordSet, opts ...kgo.Opt) (*groupMember, error) {
	m := &groupMember{name: name, assigned: map[int32]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	upd := func(ps map[string][]int32, on bool) {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, p := range ps[topic] {
			if on {
				m.assigned[p] = true
			} else {
				delete(m.assigned, p)
			}
		}
	}
	base := []kgo.Opt{
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { upd(ps, true) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { upd(ps, false) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { upd(ps, false) }),
	}
	cl, err := e.newKgo(append(base, opts...)...)
	if err != nil {
		return nil, err
	}
	m.cl = cl
	go func() {
		defer close(m.done)
		for {
			select {
			case <-m.stop:
				return
			default:
			}
			pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			fs := cl.PollRecords(pctx, 100)
			cancel()
			fs.EachError(func(t string, p int32, err error) {
				if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && m.pollErr == nil {
					m.pollErr = fmt.Errorf("%s: fetch %s[%d]: %w", name, t, p, err)
				}
			})
			rs := fs.Records()
			m.recs.add(rs)
			all.add(rs)
			if ctx.Err() != nil {
				return
			}
		}
	}()
	return m, nil
}

func (m *groupMember) partitions() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return sortedPartitions(m.assigned)
}

func (m *groupMember) stopPolling() {
	close(m.stop)
	<-m.done
}

// kgoGroup: two members share four partitions (cooperative-sticky, kgo's default), each
// record is read once, the commits are where the reading stopped, and a new member of the
// group resumes there.
func kgoGroup(ctx context.Context, e *env) (string, error) {
	topic := e.topicName("")
	group := topic + "-g"
	if err := e.createTopic(ctx, topic, 4, nil); err != nil {
		return "", err
	}
	var all recordSet
	a, err := e.startMember(ctx, "member A", group, topic, &all)
	if err != nil {
		return "", err
	}
	defer a.cl.Close()
	b, err := e.startMember(ctx, "member B", group, topic, &all)
	if err != nil {
		return "", err
	}
	defer b.cl.Close()
	balanced := func() bool {
		pa, pb := a.partitions(), b.partitions()
		if len(pa) != 2 || len(pb) != 2 {
			return false
		}
		seen := map[int32]bool{}
		for _, p := range append(pa, pb...) {
			seen[p] = true
		}
		return len(seen) == 4
	}
	t0 := time.Now()
	if !waitFor(ctx, 30*time.Second, balanced) {
		return "", fmt.Errorf("the two members did not share the 4 partitions within 30 s: A has %v, B has %v", a.partitions(), b.partitions())
	}
	pa, pb := a.partitions(), b.partitions()
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
		return "", fmt.Errorf("ProduceSync: %w", err)
	}
	if !waitFor(ctx, 30*time.Second, func() bool { return all.count() >= 200 }) {
		return "", fmt.Errorf("the group read %d of 200 records in 30 s (A %d, B %d)", all.count(), a.recs.count(), b.recs.count())
	}
	time.Sleep(700 * time.Millisecond) // room for duplicates to show
	a.stopPolling()
	b.stopPolling()
	for _, m := range []*groupMember{a, b} {
		if m.pollErr != nil {
			return "", m.pollErr
		}
	}
	if d := all.duplicates(); len(d) > 0 {
		return "", fmt.Errorf("records read more than once: %v", d)
	}
	if err := verifyRead(expsOf(rs), all.recs); err != nil {
		return "", err
	}
	for _, m := range []*groupMember{a, b} {
		mine := map[int32]bool{}
		ps := pa
		if m == b {
			ps = pb
		}
		for _, p := range ps {
			mine[p] = true
		}
		if m.recs.count() != 100 {
			return "", fmt.Errorf("%s (partitions %v) read %d records, expected 100", m.name, ps, m.recs.count())
		}
		for _, r := range m.recs.recs {
			if !mine[r.Partition] {
				return "", fmt.Errorf("%s read partition %d, not one of its %v", m.name, r.Partition, ps)
			}
		}
		if now := m.partitions(); fmt.Sprint(now) != fmt.Sprint(ps) {
			return "", fmt.Errorf("%s's assignment moved while reading: %v then %v", m.name, ps, now)
		}
	}
	for _, m := range []*groupMember{a, b} {
		if err := m.cl.CommitUncommittedOffsets(ctx); err != nil {
			return "", fmt.Errorf("%s: CommitUncommittedOffsets: %w", m.name, err)
		}
	}
	adm := kadm.NewClient(prod)
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return "", fmt.Errorf("FetchOffsets: %w", err)
	}
	for p := int32(0); p < 4; p++ {
		o, ok := offs.Lookup(topic, p)
		if !ok || o.Err != nil || o.At != 50 {
			return "", fmt.Errorf("committed offset of partition %d: %+v (found %v), expected 50", p, o, ok)
		}
	}
	a.cl.Close()
	b.cl.Close()

	// A new member resumes at the commits: only the 40 records produced after them.
	more := testRecords(topic, 40)
	for i, r := range more {
		r.Partition = int32(i % 4)
	}
	if err := prod.ProduceSync(ctx, more...).FirstErr(); err != nil {
		return "", fmt.Errorf("ProduceSync: %w", err)
	}
	var all2 recordSet
	c, err := e.startMember(ctx, "member C", group, topic, &all2)
	if err != nil {
		return "", err
	}
	defer c.cl.Close()
	if !waitFor(ctx, 30*time.Second, func() bool { return all2.count() >= 40 }) {
		return "", fmt.Errorf("the resumed member read %d of 40 new records in 30 s", all2.count())
	}
	time.Sleep(700 * time.Millisecond)
	c.stopPolling()
	if c.pollErr != nil {
		return "", c.pollErr
	}
	if err := verifyRead(expsOf(more), all2.recs); err != nil {
		return "", fmt.Errorf("resumed member: %w", err)
	}
	return fmt.Sprintf("two members shared 4 partitions (A %v, B %v), read 200 records each once (100 each), committed 50 per partition; a new member resumed at offset 50 and read exactly the 40 new records", pa, pb), nil
}

// kgoTxn: the plain transactional producer; read_committed sees committed transactions
// only, and nothing of an open one; read_uncommitted sees everything.
func kgoTxn(ctx context.Context, e *env) (string, error) {
	topic := e.topicName("")
	if err := e.createTopic(ctx, topic, 1, nil); err != nil {
		return "", err
	}
	cl, err := e.newKgo(kgo.TransactionalID(topic + "-txn"))
	if err != nil {
		return "", err
	}
	defer cl.Close()
	mk := func(prefix string, n int) []*kgo.Record {
		rs := make([]*kgo.Record, n)
		for i := range rs {
			rs[i] = &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("%s-%d", prefix, i)), Value: []byte(fmt.Sprintf("%s value %d", prefix, i))}
		}
		return rs
	}
	txn := func(rs []*kgo.Record, end *kgo.TransactionEndTry, what string) error {
		if err := cl.BeginTransaction(); err != nil {
			return fmt.Errorf("%s: BeginTransaction: %w", what, err)
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			return fmt.Errorf("%s: ProduceSync: %w", what, err)
		}
		if end == nil {
			return nil
		}
		if err := cl.EndTransaction(ctx, *end); err != nil {
			return fmt.Errorf("%s: EndTransaction: %w", what, err)
		}
		return nil
	}
	commit, abort := kgo.TryCommit, kgo.TryAbort
	c1, ab, c2, open := mk("committed1", 10), mk("aborted", 10), mk("committed2", 5), mk("open", 3)
	if err := txn(c1, &commit, "first transaction (commit)"); err != nil {
		return "", err
	}
	if err := txn(ab, &abort, "second transaction (abort)"); err != nil {
		return "", err
	}
	if err := txn(c2, &commit, "third transaction (commit)"); err != nil {
		return "", err
	}
	// Offsets as Kafka lays them out: each transaction's end marker takes one offset.
	for _, x := range []struct {
		rs    []*kgo.Record
		first int64
	}{{c1, 0}, {ab, 11}, {c2, 22}} {
		for i, r := range x.rs {
			if r.Offset != x.first+int64(i) {
				return "", fmt.Errorf("record %s got offset %d, expected %d (one offset per transaction marker)", r.Key, r.Offset, x.first+int64(i))
			}
		}
	}
	if err := txn(open, nil, "fourth transaction (left open)"); err != nil {
		return "", err
	}
	adm := kadm.NewClient(cl)
	end, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return "", fmt.Errorf("ListEndOffsets: %w", err)
	}
	lso, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return "", fmt.Errorf("ListOffsets read_committed: %w", err)
	}
	if o, _ := end.Lookup(topic, 0); o.Err != nil || o.Offset != 31 {
		return "", fmt.Errorf("end offset (read_uncommitted) %d (%v), expected 31", o.Offset, o.Err)
	}
	if o, _ := lso.Lookup(topic, 0); o.Err != nil || o.Offset != 28 {
		return "", fmt.Errorf("last stable offset (read_committed ListOffsets) %d (%v), expected 28 while a transaction is open at 28", o.Offset, o.Err)
	}
	rc := kgo.FetchIsolationLevel(kgo.ReadCommitted())
	got, err := e.readAll(ctx, topic, 1, 15, rc)
	if err != nil {
		return "", fmt.Errorf("read_committed: %w", err)
	}
	if err := verifyRead(expsOf(append(append([]*kgo.Record{}, c1...), c2...)), got); err != nil {
		return "", fmt.Errorf("read_committed (one transaction open): %w", err)
	}
	for _, g := range got {
		if !g.Attrs.IsTransactional() || g.ProducerID < 0 {
			return "", fmt.Errorf("record @%d: transactional %v, producer id %d", g.Offset, g.Attrs.IsTransactional(), g.ProducerID)
		}
	}
	unc, err := e.readAll(ctx, topic, 1, 28)
	if err != nil {
		return "", fmt.Errorf("read_uncommitted: %w", err)
	}
	if err := verifyRead(expsOf(append(append(append(append([]*kgo.Record{}, c1...), ab...), c2...), open...)), unc); err != nil {
		return "", fmt.Errorf("read_uncommitted: %w", err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return "", fmt.Errorf("fourth transaction: EndTransaction: %w", err)
	}
	got, err = e.readAll(ctx, topic, 1, 18, rc)
	if err != nil {
		return "", fmt.Errorf("read_committed after the last commit: %w", err)
	}
	if err := verifyRead(expsOf(append(append(append([]*kgo.Record{}, c1...), c2...), open...)), got); err != nil {
		return "", fmt.Errorf("read_committed after the last commit: %w", err)
	}
	return "committed 10, aborted 10, committed 5, left 3 open: LSO 28 / end 31; read_committed read 15 (then 18 after the commit), read_uncommitted 28; offsets with one per marker", nil
}

// kgoTxnGroupSession: GroupTransactSession consume-transform-produce, exactly once.
func kgoTxnGroupSession(ctx context.Context, e *env) (string, error) {
	in := e.topicName("in")
	out := e.topicName("out")
	group := in + "-g"
	if err := e.createTopic(ctx, in, 2, nil); err != nil {
		return "", err
	}
	if err := e.createTopic(ctx, out, 1, nil); err != nil {
		return "", err
	}
	prod, err := e.newKgo(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return "", err
	}
	defer prod.Close()
	rs := make([]*kgo.Record, 40)
	for i := range rs {
		rs[i] = &kgo.Record{Topic: in, Partition: int32(i % 2), Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("input %d", i))}
	}
	if err := prod.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		return "", fmt.Errorf("ProduceSync: %w", err)
	}
	sess, err := kgo.NewGroupTransactSession(e.kgoOpts(
		kgo.TransactionalID(in+"-txn"),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(in),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DefaultProduceTopic(out),
	)...)
	if err != nil {
		return "", fmt.Errorf("NewGroupTransactSession: %w", err)
	}
	defer sess.Close()
	processed, txns, aborted := 0, 0, 0
	for processed < 40 && ctx.Err() == nil && txns+aborted < 200 {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := sess.PollFetches(pctx)
		cancel()
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && ferr == nil {
				ferr = fmt.Errorf("fetch %s[%d]: %w", t, p, err)
			}
		})
		if ferr != nil {
			return "", ferr
		}
		recs := fs.Records()
		if len(recs) == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			return "", fmt.Errorf("Begin: %w", err)
		}
		for _, r := range recs {
			sess.Produce(ctx, &kgo.Record{Key: r.Key, Value: []byte("out of " + string(r.Value))}, nil)
		}
		committed, err := sess.End(ctx, kgo.TryCommit)
		if err != nil {
			return "", fmt.Errorf("End: %w", err)
		}
		if committed {
			txns++
			processed += len(recs)
		} else {
			aborted++
		}
	}
	if processed != 40 {
		return "", fmt.Errorf("processed %d of 40 input records (%d transactions committed, %d aborted)", processed, txns, aborted)
	}
	got, err := e.readAll(ctx, out, 1, 40, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		return "", fmt.Errorf("reading the output: %w", err)
	}
	if len(got) != 40 {
		return "", fmt.Errorf("the output has %d committed records, expected 40", len(got))
	}
	seen := map[string]int{}
	for _, g := range got {
		seen[string(g.Value)]++
	}
	for _, r := range rs {
		if n := seen["out of "+string(r.Value)]; n != 1 {
			return "", fmt.Errorf("output of %q appears %d times", r.Value, n)
		}
	}
	offs, err := kadm.NewClient(prod).FetchOffsets(ctx, group)
	if err != nil {
		return "", fmt.Errorf("FetchOffsets: %w", err)
	}
	for p := int32(0); p < 2; p++ {
		if o, ok := offs.Lookup(in, p); !ok || o.Err != nil || o.At != 20 {
			return "", fmt.Errorf("the group's committed offset on %s[%d] is %+v (found %v), expected 20", in, p, o, ok)
		}
	}
	return fmt.Sprintf("GroupTransactSession moved 40 records in %d committed transactions (%d aborted): each output once under read_committed, group offsets 20/20 committed in the transactions", txns, aborted), nil
}

// kgoIdempotent: kgo's default producer is idempotent: the records carry a producer id and
// the broker tracks its sequence (DescribeProducers).
func kgoIdempotent(ctx context.Context, e *env) (string, error) {
	topic := e.topicName("")
	if err := e.createTopic(ctx, topic, 1, nil); err != nil {
		return "", err
	}
	p1, err := e.newKgo()
	if err != nil {
		return "", err
	}
	defer p1.Close()
	p2, err := e.newKgo()
	if err != nil {
		return "", err
	}
	defer p2.Close()
	first := testRecords(topic, 50)
	if err := p1.ProduceSync(ctx, first...).FirstErr(); err != nil {
		return "", fmt.Errorf("ProduceSync (producer 1): %w", err)
	}
	second := testRecords(topic, 10)
	if err := p2.ProduceSync(ctx, second...).FirstErr(); err != nil {
		return "", fmt.Errorf("ProduceSync (producer 2): %w", err)
	}
	all := append(append([]*kgo.Record{}, first...), second...)
	if err := checkOffsetsDense(all); err != nil {
		return "", err
	}
	got, err := e.readAll(ctx, topic, 1, 60)
	if err != nil {
		return "", err
	}
	if err := verifyRead(expsOf(all), got); err != nil {
		return "", err
	}
	id1, id2 := got[0].ProducerID, got[50].ProducerID
	if id1 < 0 || id2 < 0 || id1 == id2 {
		return "", fmt.Errorf("producer ids %d and %d: expected two distinct ids >= 0 (kgo is idempotent by default)", id1, id2)
	}
	for _, g := range got {
		want := id1
		if g.Offset >= 50 {
			want = id2
		}
		if g.ProducerID != want || g.ProducerEpoch < 0 {
			return "", fmt.Errorf("record @%d: producer id %d epoch %d, expected id %d", g.Offset, g.ProducerID, g.ProducerEpoch, want)
		}
	}
	dp, err := kadm.NewClient(p1).DescribeProducers(ctx, kadm.TopicsSet{topic: {0: {}}})
	if err != nil {
		return "", fmt.Errorf("DescribeProducers: %w", err)
	}
	part := dp[topic].Partitions[0]
	if part.Err != nil {
		return "", fmt.Errorf("DescribeProducers %s[0]: %w", topic, part.Err)
	}
	for _, x := range []struct {
		id  int64
		seq int32
	}{{id1, 49}, {id2, 9}} {
		p, ok := part.ActiveProducers[x.id]
		if !ok || p.LastSequence != x.seq {
			return "", fmt.Errorf("DescribeProducers: producer %d: %+v (found %v), expected last sequence %d", x.id, p, ok, x.seq)
		}
	}
	return fmt.Sprintf("two default producers got producer ids %d and %d; 60 records carry them, DescribeProducers shows last sequences 49 and 9", id1, id2), nil
}
