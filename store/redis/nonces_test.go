package redisstore_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessauth/caddy-access-auth/internal/redistest"
	"github.com/accessauth/caddy-access-auth/store"
	redisstore "github.com/accessauth/caddy-access-auth/store/redis"
)

// testDate is the signed date of the tests' requests: a nonce's set is
// its date's second, and a replay has its original's date.
var testDate = time.Now()

// testSet is the key of testDate's nonces with the default prefix.
var testSet = "access_auth:nonce:" + strconv.FormatInt(testDate.Unix(), 10)

// Concurrent Seen calls share commands: every call still gets its own
// answer, each nonce is one member of the second's set, and the calls are
// sent as fewer scripts than there are calls.
func TestRedisNoncesConcurrent(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	n := openRedis(t, redisstore.Options{Addrs: []string{srv.Addr}}).Nonces()
	rdb := rawClient(t, srv.Addr)
	ctx := context.Background()
	const workers, each = 32, 100
	check := func(wantSeen bool) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan string, workers*each)
		for w := range workers {
			wg.Go(func() {
				for i := range each {
					nonce := strconv.Itoa(w) + "-" + strconv.Itoa(i)
					seen, err := n.Seen(ctx, "K", nonce, testDate, time.Minute)
					if err != nil || seen != wantSeen {
						errs <- nonce + ": " + strconv.FormatBool(seen) + " " + errString(err)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		var bad []string
		for e := range errs {
			bad = append(bad, e)
		}
		if len(bad) > 0 {
			t.Fatalf("%d calls answered wrongly (want seen=%v), e.g. %s", len(bad), wantSeen, strings.Join(bad[:min(3, len(bad))], "; "))
		}
	}
	check(false) // every nonce fresh once
	check(true)  // every one a replay after
	if keys, err := rdb.DBSize(ctx).Result(); err != nil || keys != 1 {
		t.Fatalf("%d keys in Redis (%v), want 1: the second's set", keys, err)
	}
	if members, err := rdb.SCard(ctx, testSet).Result(); err != nil || members != workers*each {
		t.Fatalf("%d members in %s (%v), want %d", members, testSet, err, workers*each)
	}
	calls := commandCalls(t, rdb)
	if scripts := calls["eval"] + calls["evalsha"]; scripts == 0 || scripts >= 2*workers*each {
		t.Fatalf("%d scripts for %d calls, want fewer (batches): %v", scripts, 2*workers*each, calls)
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// Replies are matched to their calls in order: with every other nonce
// recorded before, concurrent callers get mixed answers, each its own.
func TestRedisNoncesReplyOrder(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	n := openRedis(t, redisstore.Options{Addrs: []string{srv.Addr}}).Nonces()
	rdb := rawClient(t, srv.Addr)
	ctx := context.Background()
	const workers, each = 16, 200
	for w := range workers {
		for i := 0; i < each; i += 2 {
			rdb.SAdd(ctx, testSet, "K:"+strconv.Itoa(w)+"-"+strconv.Itoa(i))
		}
	}
	var wg sync.WaitGroup
	var wrong sync.Map
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				nonce := strconv.Itoa(w) + "-" + strconv.Itoa(i)
				if seen, err := n.Seen(ctx, "K", nonce, testDate, time.Minute); err != nil || seen != (i%2 == 0) {
					wrong.Store(nonce, errString(err))
				}
			}
		})
	}
	wg.Wait()
	wrong.Range(func(nonce, err any) bool {
		t.Errorf("nonce %s answered wrongly (%s)", nonce, err)
		return true
	})
}

// The nonces go to the database and with the credentials configured.
func TestRedisNoncesAuthAndDatabase(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Password: "s3cret"})
	ctx := context.Background()
	n := openRedis(t, redisstore.Options{URLs: []string{"redis://:s3cret@" + srv.Addr + "/3"}}).Nonces()
	for i, want := range []bool{false, true} {
		if seen, err := n.Seen(ctx, "K", "n", testDate, time.Minute); err != nil || seen != want {
			t.Fatalf("Seen #%d = %v, %v; want %v", i+1, seen, err, want)
		}
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: "s3cret", DB: 3})
	defer rdb.Close()
	if got, err := rdb.SIsMember(ctx, testSet, "K:n").Result(); err != nil || !got {
		t.Fatalf("nonce in database 3: %v, %v", got, err)
	}
}

// Calls in flight when Redis goes away fail with ErrUnavailable (none
// hangs, none is answered wrongly), and the calls after it comes back
// succeed on a new connection.
func TestRedisNoncesRestart(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	n := openRedis(t, redisstore.Options{Addrs: []string{srv.Addr}}).Nonces()
	ctx := context.Background()
	var (
		wg              sync.WaitGroup
		stop            = make(chan struct{})
		answered, fails sync.Map
	)
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				nonce := strconv.Itoa(w) + "-" + strconv.Itoa(i)
				seen, err := n.Seen(ctx, "K", nonce, testDate, time.Minute)
				switch {
				case err != nil && !errors.Is(err, store.ErrUnavailable):
					fails.Store(nonce, "not ErrUnavailable: "+err.Error())
				case err == nil && seen:
					fails.Store(nonce, "fresh nonce reported as seen")
				case err != nil:
					answered.Store("error", true)
				}
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	srv.Stop()
	time.Sleep(50 * time.Millisecond)
	srv.Restart()
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	fails.Range(func(nonce, why any) bool {
		t.Errorf("nonce %s: %s", nonce, why)
		return true
	})
	if _, ok := answered.Load("error"); !ok {
		t.Error("no call failed while Redis was down")
	}
	for i, want := range []bool{false, true} {
		if seen, err := n.Seen(ctx, "K", "after", testDate, time.Minute); err != nil || seen != want {
			t.Fatalf("Seen #%d after the restart = %v, %v; want %v", i+1, seen, err, want)
		}
	}
}

// A caller's context bounds its wait for a server that does not answer.
func TestRedisNoncesContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // silent: reads nothing, answers nothing
		}
	}()
	n := openRedis(t, redisstore.Options{Addrs: []string{ln.Addr().String()}}).Nonces()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = n.Seen(ctx, "K", "n", testDate, time.Minute)
	if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Seen on a silent server = %v, want ErrUnavailable and DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("Seen took %v past its 50ms context", d)
	}
}

// The nonce connection speaks TLS when the client does.
func TestRedisNoncesTLS(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{TLS: true})
	n := openRedis(t, redisstore.Options{Addrs: []string{srv.Addr}, TLS: srv.TLS}).Nonces()
	for i, want := range []bool{false, true} {
		if seen, err := n.Seen(context.Background(), "K", "n", testDate, time.Minute); err != nil || seen != want {
			t.Fatalf("Seen #%d over TLS = %v, %v; want %v", i+1, seen, err, want)
		}
	}
}

// A connection the server closes while it is idle (a restart, Redis's
// idle timeout) costs the next call nothing: it goes on a new one.
func TestRedisNoncesIdleConnectionClosed(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	n := openRedis(t, redisstore.Options{Addrs: []string{srv.Addr}}).Nonces()
	rdb := rawClient(t, srv.Addr)
	ctx := context.Background()
	for i, nonce := range []string{"before", "after"} {
		if seen, err := n.Seen(ctx, "K", nonce, testDate, time.Minute); err != nil || seen {
			t.Fatalf("Seen %q = %v, %v; want a fresh nonce", nonce, seen, err)
		}
		if i == 0 {
			time.Sleep(200 * time.Millisecond) // idle
			if err := rdb.ClientKillByFilter(ctx, "TYPE", "normal", "SKIPME", "yes").Err(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// Calls that give up waiting (their contexts end while Redis is slow) do
// not stall the pipe: the calls after them are answered.
func TestRedisNoncesGivenUpCalls(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	n := openRedis(t, redisstore.Options{Addrs: []string{srv.Addr}}).Nonces()
	rdb := rawClient(t, srv.Addr)
	ctx := context.Background()
	if _, err := n.Seen(ctx, "K", "warm", testDate, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Do(ctx, "CLIENT", "PAUSE", "300", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { // holds the connection through the pause
		if _, err := n.Seen(ctx, "K", "held", testDate, time.Minute); err != nil {
			t.Errorf("Seen through the pause: %v", err)
		}
	})
	time.Sleep(20 * time.Millisecond)
	for i := range 8 {
		wg.Go(func() {
			short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			if _, err := n.Seen(short, "K", "gave-up-"+strconv.Itoa(i), testDate, time.Minute); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Seen with 50ms during a 300ms pause = %v, want DeadlineExceeded", err)
			}
		})
	}
	wg.Wait()
	done, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if seen, err := n.Seen(done, "K", "after", testDate, time.Minute); err != nil || seen {
		t.Fatalf("Seen after the given-up calls = %v, %v; want a fresh nonce", seen, err)
	}
}

// Recorded tells a recorded nonce from a fresh one and records nothing: a
// nonce asked about stays fresh for Seen.
func TestRedisNoncesRecorded(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	n := openRedis(t, redisstore.Options{Addrs: []string{srv.Addr}}).Nonces()
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		record bool
		want   bool
	}{
		{"fresh", false, false},
		{"recorded", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.record {
				if _, err := n.Seen(ctx, "K", tc.name, testDate, time.Minute); err != nil {
					t.Fatal(err)
				}
			}
			for range 2 {
				got, err := n.Recorded(ctx, "K", tc.name, testDate)
				if err != nil || got != tc.want {
					t.Fatalf("Recorded = %v, %v; want %v", got, err, tc.want)
				}
			}
			if seen, err := n.Seen(ctx, "K", tc.name, testDate, time.Minute); err != nil || seen != tc.want {
				t.Fatalf("Seen after Recorded = %v, %v; want %v (Recorded must record nothing)", seen, err, tc.want)
			}
		})
	}
	srv.Stop()
	if _, err := n.Recorded(ctx, "K", "x", testDate); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Recorded with the server down: %v, want store.ErrUnavailable", err)
	}
}

// Redis before 6.2 has no SMISMEMBER: the script asks SISMEMBER for each
// member instead, with the same answers (a server with SMISMEMBER renamed
// away stands in for an old one).
func TestRedisNoncesWithoutSMISMEMBER(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Args: []string{"--rename-command", "SMISMEMBER", `""`}})
	n := openRedis(t, redisstore.Options{Addrs: []string{srv.Addr}}).Nonces()
	rdb := rawClient(t, srv.Addr)
	ctx := context.Background()
	if err := rdb.Do(ctx, "SMISMEMBER", "x", "y").Err(); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Fatalf("SMISMEMBER on the stand-in for an old server: %v, want an unknown command", err)
	}
	var wg sync.WaitGroup
	var fresh atomic.Int64
	for w := range 16 {
		wg.Go(func() {
			for i := range 50 {
				// Every nonce twice, by two callers: fresh exactly once.
				seen, err := n.Seen(ctx, "K", strconv.Itoa(w/2)+"-"+strconv.Itoa(i), testDate, time.Minute)
				if err != nil {
					t.Error(err)
					return
				}
				if !seen {
					fresh.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := fresh.Load(); got != 8*50 {
		t.Fatalf("%d nonces fresh, want %d: each of 400 once", got, 8*50)
	}
	if calls := commandCalls(t, rdb); calls["sismember"] == 0 || calls["smismember"] != 0 {
		t.Fatalf("commands run: %v, want SISMEMBER and no SMISMEMBER", calls)
	}
}

// A set's expiry is only ever lengthened: a nonce asking a shorter ttl
// than the set has (a node whose clock is ahead) leaves it, a longer one
// extends it.
func TestRedisNoncesSetTTLOnlyLengthened(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	n := openRedis(t, redisstore.Options{Addrs: []string{srv.Addr}}).Nonces()
	rdb := rawClient(t, srv.Addr)
	ctx := context.Background()
	for _, step := range []struct {
		nonce    string
		ttl      time.Duration
		min, max time.Duration
	}{
		{"first", time.Minute, 59 * time.Second, time.Minute + time.Second},
		{"shorter", 10 * time.Second, 59 * time.Second, time.Minute + time.Second},
		{"longer", 2 * time.Minute, 119 * time.Second, 2*time.Minute + time.Second},
		{"shorter-again", time.Second, 119 * time.Second, 2*time.Minute + time.Second},
	} {
		if seen, err := n.Seen(ctx, "K", step.nonce, testDate, step.ttl); seen || err != nil {
			t.Fatalf("Seen %s = %v, %v; want fresh", step.nonce, seen, err)
		}
		if ttl := rdb.PTTL(ctx, testSet).Val(); ttl < step.min || ttl > step.max {
			t.Fatalf("after %s (ttl %v): the set's PTTL %v, want [%v, %v]", step.nonce, step.ttl, ttl, step.min, step.max)
		}
	}
}
