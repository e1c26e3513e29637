package store_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/internal/redistest"
	"github.com/accessauth/caddy-access-auth/store"
)

// Concurrent Seen calls share pipelines: every call still gets its own
// answer, and the server runs one SET per call.
func TestRedisNoncesConcurrent(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	n := openRedis(t, store.RedisOptions{Addrs: []string{srv.Addr}}).Nonces()
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
					seen, err := n.Seen(ctx, "K", nonce, time.Minute)
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
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
