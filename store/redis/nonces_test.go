package redisstore_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/accessauth/caddy-access-auth/internal/redistest"
	"github.com/accessauth/caddy-access-auth/store"
	redisstore "github.com/accessauth/caddy-access-auth/store/redis"
)

// Concurrent Seen calls share commands: every call still gets its own
// answer, the server runs one SET per call, and the calls are sent as
// fewer scripts than there are calls.
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
					seen, err := n.Seen(ctx, "K", nonce, time.Now(), time.Minute)
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
	if keys, err := rdb.DBSize(ctx).Result(); err != nil || keys != workers*each {
		t.Fatalf("%d keys in Redis (%v), want %d", keys, err, workers*each)
	}
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := "cmdstat_set:calls=" + strconv.Itoa(2*workers*each) + ","; !strings.Contains(info, want) {
		t.Fatalf("commandstats lack %q:\n%s", want, info)
	}
	if scripts := commandCalls(t, rdb)["eval"]; scripts == 0 || scripts >= 2*workers*each {
		t.Fatalf("%d scripts for %d calls, want fewer (batches):\n%s", scripts, 2*workers*each, info)
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
			rdb.Set(ctx, "access_auth:nonce:K:"+strconv.Itoa(w)+"-"+strconv.Itoa(i), "1", time.Minute)
		}
	}
	var wg sync.WaitGroup
	var wrong sync.Map
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				nonce := strconv.Itoa(w) + "-" + strconv.Itoa(i)
				if seen, err := n.Seen(ctx, "K", nonce, time.Now(), time.Minute); err != nil || seen != (i%2 == 0) {
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
		if seen, err := n.Seen(ctx, "K", "n", time.Now(), time.Minute); err != nil || seen != want {
			t.Fatalf("Seen #%d = %v, %v; want %v", i+1, seen, err, want)
		}
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: "s3cret", DB: 3})
	defer rdb.Close()
	if got, err := rdb.Exists(ctx, "access_auth:nonce:K:n").Result(); err != nil || got != 1 {
		t.Fatalf("nonce key in database 3: %d, %v", got, err)
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
				seen, err := n.Seen(ctx, "K", nonce, time.Now(), time.Minute)
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
		if seen, err := n.Seen(ctx, "K", "after", time.Now(), time.Minute); err != nil || seen != want {
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
	_, err = n.Seen(ctx, "K", "n", time.Now(), time.Minute)
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
		if seen, err := n.Seen(context.Background(), "K", "n", time.Now(), time.Minute); err != nil || seen != want {
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
		if seen, err := n.Seen(ctx, "K", nonce, time.Now(), time.Minute); err != nil || seen {
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
	if _, err := n.Seen(ctx, "K", "warm", time.Now(), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Do(ctx, "CLIENT", "PAUSE", "300", "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { // holds the connection through the pause
		if _, err := n.Seen(ctx, "K", "held", time.Now(), time.Minute); err != nil {
			t.Errorf("Seen through the pause: %v", err)
		}
	})
	time.Sleep(20 * time.Millisecond)
	for i := range 8 {
		wg.Go(func() {
			short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			if _, err := n.Seen(short, "K", "gave-up-"+strconv.Itoa(i), time.Now(), time.Minute); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Seen with 50ms during a 300ms pause = %v, want DeadlineExceeded", err)
			}
		})
	}
	wg.Wait()
	done, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if seen, err := n.Seen(done, "K", "after", time.Now(), time.Minute); err != nil || seen {
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
				if _, err := n.Seen(ctx, "K", tc.name, time.Now(), time.Minute); err != nil {
					t.Fatal(err)
				}
			}
			for range 2 {
				got, err := n.Recorded(ctx, "K", tc.name, time.Now())
				if err != nil || got != tc.want {
					t.Fatalf("Recorded = %v, %v; want %v", got, err, tc.want)
				}
			}
			if seen, err := n.Seen(ctx, "K", tc.name, time.Now(), time.Minute); err != nil || seen != tc.want {
				t.Fatalf("Seen after Recorded = %v, %v; want %v (Recorded must record nothing)", seen, err, tc.want)
			}
		})
	}
	srv.Stop()
	if _, err := n.Recorded(ctx, "K", "x", time.Now()); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Recorded with the server down: %v, want store.ErrUnavailable", err)
	}
}
