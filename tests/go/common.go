package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// newKgo is a franz-go client with its default settings, plus opts; it logs warnings and
// errors to stderr.
func (e *env) newKgo(opts ...kgo.Opt) (*kgo.Client, error) {
	cl, err := kgo.NewClient(e.kgoOpts(opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kgo.NewClient: %w", err)
	}
	return cl, nil
}

func (e *env) kgoOpts(opts ...kgo.Opt) []kgo.Opt {
	all := []kgo.Opt{
		kgo.SeedBrokers(e.bootstrap),
		kgo.WithLogger(kgo.BasicLogger(os.Stderr, logLevel(), func() string {
			return time.Now().Format("15:04:05.000 ") + "kgo "
		})),
	}
	return append(all, opts...)
}

func logLevel() kgo.LogLevel {
	if verbose {
		return kgo.LogLevelDebug
	}
	return kgo.LogLevelWarn
}

// createTopic creates a topic through kadm (CreateTopics), replication factor 1.
func (e *env) createTopic(ctx context.Context, topic string, partitions int32, configs map[string]*string) error {
	cl, err := e.newKgo()
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, configs, topic)
	if err != nil {
		return fmt.Errorf("CreateTopics %s: %w", topic, err)
	}
	if resp.Err != nil {
		return fmt.Errorf("CreateTopics %s: %w (%s)", topic, resp.Err, resp.ErrMessage)
	}
	return nil
}

func strp(s string) *string { return &s }

// expRecord is what a record read back must be.
type expRecord struct {
	partition int32
	offset    int64 // -1: not known before reading
	key       []byte
	value     []byte
	headers   []kgo.RecordHeader
	timestamp time.Time // zero: not checked
}

// testRecords makes n records for topic: key "key-i" (record 3 has a null key), value
// "topic/value-i" repeated to be compressible (record 5 has an empty value, record 7 a null
// one, record 11 is 100 KiB), two headers (record 2 has none, record 4 one with a null value).
func testRecords(topic string, n int) []*kgo.Record {
	rs := make([]*kgo.Record, 0, n)
	for i := 0; i < n; i++ {
		r := &kgo.Record{Topic: topic}
		if i != 3 {
			r.Key = []byte(fmt.Sprintf("key-%d", i))
		}
		switch i {
		case 5:
			r.Value = []byte{}
		case 7:
			r.Value = nil
		case 11:
			r.Value = bytes.Repeat([]byte(fmt.Sprintf("big-%d|", i)), 100*1024/7)
		default:
			r.Value = []byte(strings.Repeat(fmt.Sprintf("%s/value-%d ", topic, i), 1+i%4))
		}
		switch i {
		case 2:
		case 4:
			r.Headers = []kgo.RecordHeader{{Key: "h-null", Value: nil}}
		default:
			r.Headers = []kgo.RecordHeader{
				{Key: "index", Value: []byte(fmt.Sprint(i))},
				{Key: "topic", Value: []byte(topic)},
			}
		}
		rs = append(rs, r)
	}
	return rs
}

func bytesMatch(want, got []byte) bool {
	if want == nil {
		return got == nil
	}
	return got != nil && bytes.Equal(want, got)
}

func showBytes(b []byte) string {
	if b == nil {
		return "null"
	}
	if len(b) > 40 {
		return fmt.Sprintf("%q...(%d bytes)", b[:40], len(b))
	}
	return fmt.Sprintf("%q", b)
}

// sameRecord compares a record read back with what was written.
func sameRecord(want expRecord, got *kgo.Record) error {
	where := fmt.Sprintf("%s[%d]@%d", got.Topic, got.Partition, got.Offset)
	if want.partition != got.Partition || (want.offset >= 0 && want.offset != got.Offset) {
		return fmt.Errorf("%s: expected at partition %d offset %d", where, want.partition, want.offset)
	}
	if !bytesMatch(want.key, got.Key) {
		return fmt.Errorf("%s: key %s, expected %s", where, showBytes(got.Key), showBytes(want.key))
	}
	if !bytesMatch(want.value, got.Value) {
		return fmt.Errorf("%s: value %s, expected %s", where, showBytes(got.Value), showBytes(want.value))
	}
	if len(want.headers) != len(got.Headers) {
		return fmt.Errorf("%s: %d headers, expected %d", where, len(got.Headers), len(want.headers))
	}
	for i, h := range want.headers {
		g := got.Headers[i]
		if h.Key != g.Key || !bytesMatch(h.Value, g.Value) {
			return fmt.Errorf("%s: header %d is %q=%s, expected %q=%s", where, i, g.Key, showBytes(g.Value), h.Key, showBytes(h.Value))
		}
	}
	if !want.timestamp.IsZero() && !want.timestamp.Equal(got.Timestamp) {
		return fmt.Errorf("%s: timestamp %d, expected %d", where, got.Timestamp.UnixMilli(), want.timestamp.UnixMilli())
	}
	return nil
}

func expFromProduced(r *kgo.Record) expRecord {
	return expRecord{partition: r.Partition, offset: r.Offset, key: r.Key, value: r.Value, headers: r.Headers, timestamp: r.Timestamp}
}

// checkOffsetsDense: the offsets each partition gave the produced records are 0..n-1 in
// produce order (Kafka's order guarantee for one producer, and no gap or duplicate).
func checkOffsetsDense(produced []*kgo.Record) error {
	next := map[int32]int64{}
	for _, r := range produced {
		if r.Offset != next[r.Partition] {
			return fmt.Errorf("produced record %q got %s[%d]@%d, expected offset %d (dense, in order)", r.Key, r.Topic, r.Partition, r.Offset, next[r.Partition])
		}
		next[r.Partition]++
	}
	return nil
}

type tp struct {
	topic     string
	partition int32
}

type tpo struct {
	tp
	offset int64
}

// collect polls cl until it holds want records, then polls for linger more to catch extras;
// it fails on a fetch error.
func collect(ctx context.Context, cl *kgo.Client, want int, linger time.Duration) ([]*kgo.Record, error) {
	var got []*kgo.Record
	var extraUntil time.Time
	for {
		if !extraUntil.IsZero() && time.Now().After(extraUntil) {
			return got, nil
		}
		pctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return got, fmt.Errorf("read %d records of %d before the deadline", len(got), want)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && ferr == nil {
				ferr = fmt.Errorf("fetch %s[%d]: %w", t, p, err)
			}
		})
		if ferr != nil {
			return got, ferr
		}
		got = append(got, fs.Records()...)
		if len(got) >= want && extraUntil.IsZero() {
			extraUntil = time.Now().Add(linger)
		}
	}
}

// readAll reads every partition of topic from the start (by assignment, no group) until
// want records came, plus a short wait for extras.
func (e *env) readAll(ctx context.Context, topic string, partitions int32, want int, opts ...kgo.Opt) ([]*kgo.Record, error) {
	ps := map[int32]kgo.Offset{}
	for p := int32(0); p < partitions; p++ {
		ps[p] = kgo.NewOffset().AtStart()
	}
	cl, err := e.newKgo(append([]kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: ps})}, opts...)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	return collect(ctx, cl, want, 300*time.Millisecond)
}

// verifyRead checks that got is exactly want (each once), each partition's records in
// offset order.
func verifyRead(want []expRecord, got []*kgo.Record) error {
	if len(got) != len(want) {
		return fmt.Errorf("read %d records, expected %d", len(got), len(want))
	}
	byPos := map[tpo]expRecord{}
	for _, w := range want {
		byPos[tpo{tp{"", w.partition}, w.offset}] = w
	}
	last := map[int32]int64{}
	seen := map[tpo]bool{}
	for _, g := range got {
		pos := tpo{tp{"", g.Partition}, g.Offset}
		if seen[pos] {
			return fmt.Errorf("%s[%d]@%d read twice", g.Topic, g.Partition, g.Offset)
		}
		seen[pos] = true
		if l, ok := last[g.Partition]; ok && g.Offset <= l {
			return fmt.Errorf("%s[%d]: offset %d read after %d", g.Topic, g.Partition, g.Offset, l)
		}
		last[g.Partition] = g.Offset
		w, ok := byPos[pos]
		if !ok {
			return fmt.Errorf("%s[%d]@%d (key %s) was not expected", g.Topic, g.Partition, g.Offset, showBytes(g.Key))
		}
		if err := sameRecord(w, g); err != nil {
			return err
		}
	}
	return nil
}

// recordSet counts records by partition and offset, for "each once" across consumers.
type recordSet struct {
	mu   sync.Mutex
	seen map[tpo]int
	recs []*kgo.Record
}

func (s *recordSet) add(rs []*kgo.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[tpo]int{}
	}
	for _, r := range rs {
		s.seen[tpo{tp{r.Topic, r.Partition}, r.Offset}]++
		s.recs = append(s.recs, r)
	}
}

func (s *recordSet) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.recs)
}

func (s *recordSet) duplicates() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var d []string
	for k, n := range s.seen {
		if n > 1 {
			d = append(d, fmt.Sprintf("%s[%d]@%d x%d", k.topic, k.partition, k.offset, n))
		}
	}
	sort.Strings(d)
	return d
}

func sortedPartitions(m map[int32]bool) []int32 {
	var ps []int32
	for p := range m {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps
}

// waitFor polls cond every 50 ms until it holds or d passes.
func waitFor(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if cond() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cond()
}
