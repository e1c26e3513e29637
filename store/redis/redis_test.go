package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// openRedis opens a backend on srv's address and closes it with the test.
func openRedis(t testing.TB, opts redisstore.Options) *redisstore.Backend {
	t.Helper()
	b, err := redisstore.Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// rawClient is a plain client for looking at and tampering with the server.
func rawClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	return c
}

func put(t testing.TB, b store.Backend, table, id, value string, notify ...string) {
	t.Helper()
	err := b.Update(context.Background(), func(tx store.Tx) error {
		tx.Notify(notify...)
		return tx.Put(table, id, []byte(value))
	})
	if err != nil {
		t.Fatalf("Update put %s/%s: %v", table, id, err)
	}
}

func mustGet(t testing.TB, b store.Backend, table, id string) string {
	t.Helper()
	v, err := b.Get(context.Background(), table, id)
	if err != nil {
		t.Fatalf("Get %s/%s: %v", table, id, err)
	}
	return string(v)
}

func TestRedisRecords(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t, redistest.Options{})
	b := openRedis(t, redisstore.Options{Addrs: []string{srv.Addr}})

	// "key_names" and "credentials" are lookup tables
	// (store.IsLookupTable): no index, and Scan still works.
	lookupTables := []string{"key_names", "credentials"}
	for _, id := range []string{"b", "a", "g1 auth-2", "g1 auth-1", "g10 auth-3", "c"} {
		put(t, b, "t", id, "v-"+id)
		for _, table := range lookupTables {
			put(t, b, table, id, "v-"+id)
		}
	}
	raw := rawClient(t, srv.Addr)
	if n := raw.Exists(ctx, "{access_auth}:i:t").Val(); n != 1 {
		t.Errorf("table t has no index")
	}
	for _, table := range lookupTables {
		if n := raw.Exists(ctx, "{access_auth}:i:"+table).Val(); n != 0 {
			t.Errorf("lookup table %s has an index", table)
		}
	}
	if got := mustGet(t, b, "t", "a"); got != "v-a" {
		t.Fatalf("Get a = %q", got)
	}
	if v, err := b.Get(ctx, "t", "missing"); v != nil || err != nil {
		t.Fatalf("Get missing = %q, %v; want nil, nil", v, err)
	}
	if v, err := b.Get(ctx, "other", "a"); v != nil || err != nil {
		t.Fatalf("tables are not separate: %q, %v", v, err)
	}

	tests := []struct {
		after string
		limit int
		want  []string
	}{
		{"", 0, []string{"a", "b", "c", "g1 auth-1", "g1 auth-2", "g10 auth-3"}},
		{"", 2, []string{"a", "b"}},
		{"b", 2, []string{"c", "g1 auth-1"}},
		{"g1", 0, []string{"g1 auth-1", "g1 auth-2", "g10 auth-3"}},
		{"g10 auth-3", 5, nil},
		{"zzz", 0, nil},
	}
	for _, tt := range tests {
		for _, table := range append([]string{"t"}, lookupTables...) {
			t.Run(fmt.Sprintf("scan %s after %q limit %d", table, tt.after, tt.limit), func(t *testing.T) {
				var got []store.Record
				err := b.View(ctx, func(tx store.Tx) error {
					var err error
					got, err = tx.Scan(table, tt.after, tt.limit)
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, r := range got {
					ids = append(ids, r.ID)
					if string(r.Value) != "v-"+r.ID {
						t.Errorf("record %s = %q", r.ID, r.Value)
					}
				}
				if !slices.Equal(ids, tt.want) {
					t.Errorf("ids = %q, want %q", ids, tt.want)
				}
			})
		}
	}
	_ = b.View(ctx, func(tx store.Tx) error {
		for _, table := range append([]string{"t"}, lookupTables...) {
			recs, err := tx.ScanReverse(table, "g1 auth-1", 2)
			if err != nil || len(recs) != 2 || recs[0].ID != "c" || recs[1].ID != "b" {
				t.Errorf("ScanReverse %s before g1 auth-1 = %v, %v; want c, b", table, recs, err)
			}
		}
		return nil
	})

	// Delete removes the record from Get and Scan; a transaction reads its own writes.
	err := b.Update(ctx, func(tx store.Tx) error {
		if err := tx.Delete("t", "a"); err != nil {
			return err
		}
		if v, err := tx.Get("t", "a"); v != nil || err != nil {
			return fmt.Errorf("deleted record read back as %q, %v", v, err)
		}
		if err := tx.Put("t", "new", []byte("v-new")); err != nil {
			return err
		}
		if v, err := tx.Get("t", "new"); string(v) != "v-new" || err != nil {
			return fmt.Errorf("own Put read back as %q, %v", v, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, b, "t", "a"); got != "" {
		t.Fatalf("deleted record still there: %q", got)
	}
	_ = b.View(ctx, func(tx store.Tx) error {
		recs, err := tx.Scan("t", "", 1)
		if err != nil || len(recs) != 1 || recs[0].ID != "b" {
			t.Errorf("scan after delete = %v, %v; want b first", recs, err)
		}
		if err := tx.Put("t", "x", nil); err == nil {
			t.Error("Put in View succeeded")
		}
		return nil
	})
}

func TestRedisKeyPrefixSeparatesDataSets(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	a := openRedis(t, redisstore.Options{Addrs: []string{srv.Addr}})
	b := openRedis(t, redisstore.Options{Addrs: []string{srv.Addr}, KeyPrefix: "tenant2"})
	put(t, a, "t", "k", "a")
	if got := mustGet(t, b, "t", "k"); got != "" {
		t.Fatalf("prefix tenant2 sees the default prefix's record: %q", got)
	}
	keys, err := rawClient(t, srv.Addr).Keys(context.Background(), "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "{access_auth}:") {
			t.Errorf("key %q lacks the hash tag {access_auth}", k)
		}
	}
}

func TestRedisUpdateAtomic(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t, redistest.Options{})
	b := openRedis(t, redisstore.Options{Addrs: []string{srv.Addr}})
	put(t, b, "t", "kept", "old")
	raw := rawClient(t, srv.Addr)
	revBefore, _ := raw.Get(ctx, "{access_auth}:rev").Result()

	boom := errors.New("boom")
	err := b.Update(ctx, func(tx store.Tx) error {
		tx.Put("t", "kept", []byte("new"))
		tx.Put("t", "other", []byte("x"))
		tx.Delete("t", "kept")
		tx.Notify("K")
		return boom
	})
	if !errors.Is(err, boom) || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Update = %v, want fn's error as is", err)
	}
	if got := mustGet(t, b, "t", "kept"); got != "old" {
		t.Fatalf("kept = %q after a failed Update", got)
	}
	if got := mustGet(t, b, "t", "other"); got != "" {
		t.Fatalf("other = %q after a failed Update", got)
	}
	if rev, _ := raw.Get(ctx, "{access_auth}:rev").Result(); rev != revBefore {
		t.Fatalf("revision moved from %s to %s on a failed Update", revBefore, rev)
	}
}

func TestRedisConcurrentUpdates(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t, redistest.Options{})
	const workers, increments = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		b := openRedis(t, redisstore.Options{Addrs: []string{srv.Addr}})
		wg.Go(func() {
			for range increments {
				err := b.Update(ctx, func(tx store.Tx) error {
					v, err := tx.Get("counters", "c")
					if err != nil {
						return err
					}
					n, _ := strconv.Atoi(string(v))
					tx.Notify("K")
					return tx.Put("counters", "c", []byte(strconv.Itoa(n+1)))
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	b := openRedis(t, redisstore.Options{Addrs: []string{srv.Addr}})
	if got, want := mustGet(t, b, "counters", "c"), strconv.Itoa(workers*increments); got != want {
		t.Fatalf("counter = %s, want %s (lost updates)", got, want)
	}
	rev, err := rawClient(t, srv.Addr).Get(ctx, "{access_auth}:rev").Int()
	if err != nil || rev != workers*increments {
		t.Fatalf("revision = %d, %v; want one per committed announcing Update (%d)", rev, err, workers*increments)
	}
}

// commandCalls sums the calls of every command but INFO from INFO commandstats.
func commandCalls(t testing.TB, raw *redis.Client) map[string]int {
	t.Helper()
	info, err := raw.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]int{}
	for line := range strings.Lines(info) {
		name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":calls=")
		if !ok || name == "info" {
			continue
		}
		n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
		calls[name] = n
	}
	return calls
}

func TestRedisGetIsOneRoundTrip(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t, redistest.Options{})
	b := openRedis(t, redisstore.Options{Addrs: []string{srv.Addr}})
	put(t, b, "credentials", "K", "cred")
	mustGet(t, b, "credentials", "K") // warm the connection pool
	raw := rawClient(t, srv.Addr)
	before := commandCalls(t, raw)
	if v, err := b.Get(ctx, "credentials", "K"); string(v) != "cred" || err != nil {
		t.Fatalf("Get = %q, %v", v, err)
	}
	after := commandCalls(t, raw)
	total := 0
	for name, n := range after {
		if d := n - before[name]; d != 0 {
			total += d
			if name != "hget" {
				t.Errorf("Get sent %d %s", d, name)
			}
		}
	}
	if total != 1 {
		t.Fatalf("Get sent %d commands, want one HGET", total)
	}
}

func TestRedisUnavailable(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t, redistest.Options{})
	b := openRedis(t, redisstore.Options{Addrs: []string{srv.Addr}})
	put(t, b, "t", "k", "v")
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("Ping on a live server: %v", err)
	}
	srv.Stop()

	start := time.Now()
	if _, err := b.Get(ctx, "t", "k"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Get on a stopped server = %v, want ErrUnavailable", err)
	}
	if err := b.Update(ctx, func(tx store.Tx) error { return tx.Put("t", "k", []byte("w")) }); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Update on a stopped server = %v, want ErrUnavailable", err)
	}
	if err := b.View(ctx, func(tx store.Tx) error { _, err := tx.Scan("t", "", 0); return err }); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Scan on a stopped server = %v, want ErrUnavailable", err)
	}
	if _, err := b.Nonces().Seen(ctx, "K", "n", time.Now(), time.Minute); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Seen on a stopped server = %v, want ErrUnavailable", err)
	}
	if err := b.Ping(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ping on a stopped server = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("five calls on a dead server took %v; the 503 must be quick", d)
	}

	srv.Restart() // no persistence: an empty server on the same port
	put(t, b, "t", "k", "again")
	if got := mustGet(t, b, "t", "k"); got != "again" {
		t.Fatalf("after the server came back Get = %q", got)
	}
}

func TestRedisNonces(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t, redistest.Options{})
	n := openRedis(t, redisstore.Options{Addrs: []string{srv.Addr}}).Nonces()
	raw := rawClient(t, srv.Addr)
	// Each case has a second of its own, and a date 1ms before its end:
	// a set lives the ttl from the end of its second.
	base := time.Now().Unix()
	date := func(i int64) time.Time { return time.Unix(base+i, 999e6) }
	set := func(i int64) string { return "access_auth:nonce:" + strconv.FormatInt(base+i, 10) }
	seen := func(key, nonce string, i int64, ttl time.Duration) bool {
		t.Helper()
		s, err := n.Seen(ctx, key, nonce, date(i), ttl)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if seen("K", "n1", 0, time.Minute) {
		t.Fatal("first use of a nonce reported as seen")
	}
	if !seen("K", "n1", 0, time.Minute) {
		t.Fatal("second use of a nonce not reported")
	}
	if seen("K2", "n1", 0, time.Minute) {
		t.Fatal("nonces of different API keys collide")
	}
	ttl, err := raw.PTTL(ctx, set(0)).Result()
	if err != nil || ttl <= 0 || ttl > time.Minute+time.Millisecond {
		t.Fatalf("nonce set TTL = %v, %v; want (0, 1m1ms]", ttl, err)
	}
	// PTTL answers -1 for a key without expiry (and -2 for one already gone).
	if seen("K", "forever", 1, 0); raw.PTTL(ctx, set(1)).Val() == -1 {
		t.Fatal("a nonce stored with ttl 0 never expires")
	}
	if seen("K", "short", 2, 50*time.Millisecond) {
		t.Fatal("first use reported as seen")
	}
	time.Sleep(120 * time.Millisecond)
	if seen("K", "short", 2, 50*time.Millisecond) {
		t.Fatal("nonce still remembered after its TTL")
	}
}

func TestOpenRedisOptions(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{Password: "s3cret"})
	ctx := context.Background()
	bad := []struct {
		name string
		opts redisstore.Options
		want string
	}{
		{"no address", redisstore.Options{}, "no address"},
		{"scheme", redisstore.Options{URLs: []string{"http://localhost:1"}}, "scheme"},
		{"urls and addrs", redisstore.Options{URLs: []string{"redis://a:1"}, Addrs: []string{"b:1"}}, "not both"},
		{"cluster db", redisstore.Options{URLs: []string{"redis://a:1/2", "redis://b:1/2"}}, "database 0"},
		{"mixed credentials", redisstore.Options{URLs: []string{"redis://u:p@a:1", "redis://b:1"}}, "same"},
		{"sentinel and cluster", redisstore.Options{Addrs: []string{"a:1"}, Cluster: true, MasterName: "m"}, "exclude"},
		{"prefix with braces", redisstore.Options{Addrs: []string{"a:1"}, KeyPrefix: "a{b}"}, "braces"},
		{"wrong password", redisstore.Options{URLs: []string{"redis://:nope@" + srv.Addr}}, "WRONGPASS"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			b, err := redisstore.Open(ctx, tt.opts)
			if err == nil {
				b.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not say %q", err, tt.want)
			}
		})
	}
	t.Run("user without a needed command", func(t *testing.T) {
		admin := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: "s3cret"})
		defer admin.Close()
		for _, denied := range []string{"info", "wait"} {
			user := "no-" + denied
			if err := admin.Do(ctx, "ACL", "SETUSER", user, "on", ">pw", "~*", "+@all", "-"+denied).Err(); err != nil {
				t.Fatal(err)
			}
			b, err := redisstore.Open(ctx, redisstore.Options{Addrs: []string{srv.Addr}, Username: user, Password: "pw"})
			if err == nil {
				b.Close()
				t.Fatalf("a user who may not run %s opened Redis", denied)
			}
			if !strings.Contains(err.Error(), "NOPERM") || !strings.Contains(err.Error(), denied) {
				t.Fatalf("without %s: error %q", denied, err)
			}
		}
	})
	t.Run("password in URL", func(t *testing.T) {
		b := openRedis(t, redisstore.Options{URLs: []string{"redis://:s3cret@" + srv.Addr + "/3"}})
		put(t, b, "t", "k", "v")
		db3 := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: "s3cret", DB: 3})
		defer db3.Close()
		n, err := db3.HLen(ctx, "{access_auth}:t:t").Result()
		if err != nil || n != 1 {
			t.Fatalf("record not in database 3: %d, %v", n, err)
		}
	})
	t.Run("explicit password wins", func(t *testing.T) {
		b := openRedis(t, redisstore.Options{URLs: []string{"redis://:nope@" + srv.Addr}, Password: "s3cret"})
		if err := b.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("rediss", func(t *testing.T) {
		tlsSrv := redistest.Start(t, redistest.Options{TLS: true})
		url := "rediss://" + tlsSrv.Addr
		b := openRedis(t, redisstore.Options{URLs: []string{url}, TLS: tlsSrv.TLS.Clone()})
		put(t, b, "t", "k", "v")
		if got := mustGet(t, b, "t", "k"); got != "v" {
			t.Fatalf("Get over TLS = %q", got)
		}
		// Without the test CA the certificate is not trusted.
		untrusted := openRedis(t, redisstore.Options{URLs: []string{url}})
		if err := untrusted.Ping(ctx); !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("Ping with an untrusted certificate = %v", err)
		}
	})
	t.Run("unreachable is not an error", func(t *testing.T) {
		b := openRedis(t, redisstore.Options{Addrs: []string{"127.0.0.1:1"}})
		if err := b.Ping(ctx); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("Ping = %v", err)
		}
	})
}
