package redisstore

import (
	"bufio"
	"context"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/internal/redistest"
)

// BenchmarkRedisNoncesConcurrent compares the CPU time of the lean path
// with go-redis's pipelines under 32 concurrent callers (a gateway's
// load): cpu-ns/op is this process's user+system time per Seen,
// redis-cpu-ns/op redis-server's (INFO cpu) per Seen.
func BenchmarkRedisNoncesConcurrent(b *testing.B) {
	srv := redistest.Start(b, redistest.Options{})
	backend, err := Open(context.Background(), Options{Addrs: []string{srv.Addr}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { backend.Close() })
	paths := []struct {
		name   string
		nonces *Nonces
	}{
		{"pipe", backend.Nonces()},
		{"go-redis", &Nonces{client: backend.client, prefix: backend.prefix + ":nonce:"}},
	}
	serverCPU := redistest.CPU(b, srv.Addr)
	var seq atomic.Int64
	for _, path := range paths {
		b.Run(path.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(16)
			start, serverStart := cpuTime(b), serverCPU()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					nonce := strconv.FormatInt(seq.Add(1), 10)
					if _, err := path.nonces.Seen(ctx, "0123456789ABCDEF0123456789ABCDEF", nonce, time.Now(), time.Minute); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64((cpuTime(b)-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64((serverCPU()-serverStart).Nanoseconds())/float64(b.N), "redis-cpu-ns/op")
		})
	}
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestNonceBatch runs hand-made batches through both paths to a
// standalone server (the nonce pipe's RESP, by EVAL and by EVALSHA, and
// go-redis's pipeline): a nonce named twice in a batch is fresh the first
// time only, one recorded by an earlier batch is a replay, the same nonce
// under another date's second or another API key is another nonce; and a
// replay to another node (a second client on the same Redis) is refused.
func TestNonceBatch(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	open := func() *Nonces {
		backend, err := Open(ctx, Options{Addrs: []string{srv.Addr}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { backend.Close() })
		return backend.Nonces()
	}
	node, other := open(), open()
	second := time.Now().Unix()
	type want struct {
		apiKey, nonce string
		second        int64
		fresh         bool
	}
	batch := func(wants []want) ([]*nonceCall, map[*nonceCall]want) {
		calls, byCall := make([]*nonceCall, len(wants)), map[*nonceCall]want{}
		for i, w := range wants {
			calls[i] = &nonceCall{apiKey: w.apiKey, nonce: w.nonce, second: second + w.second, ttl: time.Minute}
			byCall[calls[i]] = w
		}
		return calls, byCall
	}
	check := func(name string, calls []*nonceCall, byCall map[*nonceCall]want) {
		t.Helper()
		for _, c := range calls {
			if w := byCall[c]; c.err != nil || c.fresh != w.fresh {
				t.Errorf("%s: %s:%s at +%ds: fresh %v (%v), want %v", name, w.apiKey, w.nonce, w.second, c.fresh, c.err, w.fresh)
			}
		}
	}
	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	wire := func(calls []*nonceCall, loaded bool) {
		t.Helper()
		sortNonceCalls(calls)
		if _, err := conn.Write(appendNonceScript(nil, node.prefix, calls, loaded)); err != nil {
			t.Fatal(err)
		}
		if err := readNonceScriptReply(r, calls); err != nil {
			t.Fatal(err)
		}
	}

	calls, byCall := batch([]want{
		{"K", "a", 0, true}, {"K", "b", 1, true}, {"K", "a", 0, false}, // twice in the batch
		{"K", "a", 1, true}, {"K2", "a", 0, true}, {"K", "c", 0, true}, {"K", "b", 1, false},
	})
	wire(calls, false)
	check("EVAL", calls, byCall)

	calls, byCall = batch([]want{
		{"K", "a", 0, false}, {"K", "d", 0, true}, {"K", "d", 0, false}, {"K2", "a", 1, true}, // a: from the batch before
	})
	wire(calls, true)
	check("EVALSHA", calls, byCall)

	calls, byCall = batch([]want{{"K", "e", 2, true}, {"K", "c", 0, false}, {"K", "e", 2, false}, {"K2", "a", 1, false}})
	node.run(ctx, calls)
	check("go-redis", calls, byCall)

	// A set's run longer than maxRunMembers is cut in two: a nonce named
	// in both runs is still fresh once.
	long := make([]want, maxRunMembers+2)
	for i := range long {
		long[i] = want{"L", strconv.Itoa(i), 3, true}
	}
	long[maxRunMembers+1] = want{"L", "0", 3, false}
	calls, byCall = batch(long)
	wire(calls, true)
	check("long run", calls, byCall)

	date := time.Unix(second, 0)
	for i, n := range []*Nonces{node, other} {
		nonce := "to-" + strconv.Itoa(i)
		if seen, err := n.Seen(ctx, "K", nonce, date, time.Minute); seen || err != nil {
			t.Fatalf("Seen %s = %v, %v; want fresh", nonce, seen, err)
		}
		if seen, err := [2]*Nonces{other, node}[i].Seen(ctx, "K", nonce, date, time.Minute); !seen || err != nil {
			t.Fatalf("Seen %s on the other node = %v, %v; want a replay", nonce, seen, err)
		}
	}
	if seen, err := other.Recorded(ctx, "K", "a", date); !seen || err != nil {
		t.Fatalf("Recorded of a batch's nonce on the other node = %v, %v", seen, err)
	}
}

// A server that drops its scripts (SCRIPT FLUSH, a failover to a replica
// that never ran the script) costs the nonce pipe nothing: it sends the
// batch in full again.
func TestNoncePipeScriptFlushed(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	ctx := context.Background()
	backend, err := Open(ctx, Options{Addrs: []string{srv.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	n := backend.Nonces()
	date := time.Now()
	for i, nonce := range []string{"by-eval", "by-evalsha", "after-flush"} {
		if i == 2 {
			if err := backend.client.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
		for j, want := range []bool{false, true} {
			if seen, err := n.Seen(ctx, "K", nonce, date, time.Minute); seen != want || err != nil {
				t.Fatalf("Seen %s #%d = %v, %v; want %v", nonce, j+1, seen, err, want)
			}
		}
	}
	info := backend.client.Info(ctx, "commandstats").Val()
	if !strings.Contains(info, "cmdstat_evalsha:calls=") || !strings.Contains(info, "cmdstat_eval:calls=2,") {
		t.Fatalf("want EVALSHA, and EVAL twice (the first batch, the first after the flush):\n%s", info)
	}
}
