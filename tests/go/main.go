// spate-go-check runs one check of a Go Kafka client (franz-go's kgo and kadm, IBM's sarama)
// against a running broker, end to end: it writes through the client, reads back (through the
// same client or an independent one) and compares counts, contents, order and offsets.
//
//	spate-go-check -bootstrap 127.0.0.1:9092 [-log-dir DIR] [-timeout 60s] [-v] CHECK
//	spate-go-check -list
//
// It prints what it did, then one last line: the reason the check passed or failed
// (scripts/lib/checks.sh's run_check shows that line); the exit status is 0 on a pass, 1 on a
// failure, 2 on a usage error. scripts/go-check.sh builds it once and runs every check against
// a fresh Spate broker.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// env is what every check gets.
type env struct {
	bootstrap string
	logDir    string // the broker's log.dirs, if known (checked against DescribeLogDirs)
	name      string // the check's name, the seed of its topic and group names
}

var verbose bool

type checkFn func(ctx context.Context, e *env) (string, error)

var checks = map[string]checkFn{}

func register(name string, fn checkFn) {
	if _, dup := checks[name]; dup {
		panic("check registered twice: " + name)
	}
	checks[name] = fn
}

func checkNames() []string {
	names := make([]string, 0, len(checks))
	for n := range checks {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// topicName gives a check its own topic (one broker serves every check).
func (e *env) topicName(suffix string) string {
	n := strings.NewReplacer("/", "-", "@", "-", ".", "-").Replace(e.name)
	if suffix != "" {
		n += "-" + suffix
	}
	return fmt.Sprintf("go-%s-%d", n, time.Now().UnixNano()%1_000_000)
}

func main() {
	bootstrap := flag.String("bootstrap", "", "the broker's HOST:PORT")
	logDir := flag.String("log-dir", "", "the broker's log.dirs (optional; DescribeLogDirs is checked against it)")
	timeout := flag.Duration("timeout", 60*time.Second, "the whole check's deadline")
	list := flag.Bool("list", false, "print the check names, one a line")
	flag.BoolVar(&verbose, "v", false, "log the clients' requests (kgo at debug level, sarama's logger) to stderr")
	flag.Parse()
	if *list {
		for _, n := range checkNames() {
			fmt.Println(n)
		}
		return
	}
	if *bootstrap == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: spate-go-check -bootstrap HOST:PORT [-log-dir DIR] [-timeout D] CHECK  |  -list")
		os.Exit(2)
	}
	name := flag.Arg(0)
	fn, ok := checks[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown check %q; -list prints them\n", name)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	start := time.Now()
	// The check closes its clients before it returns, so nothing they log comes after the
	// last line.
	reason, err := fn(ctx, &env{bootstrap: *bootstrap, logDir: *logDir, name: name})
	took := time.Since(start).Round(time.Millisecond)
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("deadline of %s passed", *timeout)
	}
	if err != nil {
		fmt.Printf("%s (after %s)\n", oneLine(err.Error()), took)
		os.Exit(1)
	}
	fmt.Printf("%s (%s)\n", reason, took)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// logf is a progress line: shown above the reason when a check fails.
func logf(format string, args ...any) {
	fmt.Printf(format+"\n", args...)
}
