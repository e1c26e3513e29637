package redisstore

import (
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestRedisUniversalOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		addrs   []string
		user    string
		pass    string
		db      int
		tls     bool
		cluster bool
	}{
		{"one URL", Options{URLs: []string{"redis://u:p@h:7000/2"}}, []string{"h:7000"}, "u", "p", 2, false, false},
		{"default port", Options{URLs: []string{"redis://h"}}, []string{"h:6379"}, "", "", 0, false, false},
		{"rediss", Options{URLs: []string{"rediss://h:7000"}}, []string{"h:7000"}, "", "", 0, true, false},
		{"several URLs", Options{URLs: []string{"redis://:p@a:1", "redis://:p@b:2"}}, []string{"a:1", "b:2"}, "", "p", 0, false, true},
		{"cluster URL", Options{URLs: []string{"redis://:p@a:1?addr=b:2&addr=c:3"}}, []string{"a:1", "b:2", "c:3"}, "", "p", 0, false, true},
		{"addrs", Options{Addrs: []string{"a:1"}, Username: "u", Password: "p", DB: 4}, []string{"a:1"}, "u", "p", 4, false, false},
		{"sentinel", Options{Addrs: []string{"a:1", "b:2"}, MasterName: "m"}, []string{"a:1", "b:2"}, "", "", 0, false, false},
		{"explicit wins", Options{URLs: []string{"redis://u:p@h:1/1"}, Username: "v", Password: "q", DB: 3}, []string{"h:1"}, "v", "q", 3, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := redisUniversalOptions(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(u.Addrs, ",") != strings.Join(tt.addrs, ",") || u.Username != tt.user || u.Password != tt.pass ||
				u.DB != tt.db || (u.TLSConfig != nil) != tt.tls || (len(u.Addrs) > 1 && u.MasterName == "" || u.IsClusterMode) != tt.cluster {
				t.Fatalf("got addrs %v user %q pass %q db %d tls %v cluster mode %v", u.Addrs, u.Username, u.Password, u.DB, u.TLSConfig != nil, u.IsClusterMode)
			}
			if u.MasterName != tt.opts.MasterName || u.DialTimeout == 0 || u.ReadTimeout == 0 || u.MaxRetries != 1 {
				t.Fatalf("master %q, timeouts %v/%v, retries %d", u.MasterName, u.DialTimeout, u.ReadTimeout, u.MaxRetries)
			}
		})
	}
}

// FuzzRedisURL feeds arbitrary URLs to the option parsing: an error or
// options with at least one address, never a panic.
func FuzzRedisURL(f *testing.F) {
	for _, s := range []string{"redis://u:p@h:1/2", "rediss://h", "redis://h?addr=a:1&addr=b:2", "redis://h:1?dial_timeout=3",
		"http://h", "redis://[::1]:6379/0", "redis://h:99999/x", "redis:///", "%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := redisUniversalOptions(Options{URLs: []string{raw}})
		if err == nil && len(u.Addrs) == 0 {
			t.Fatalf("%q: no error and no address", raw)
		}
	})
}

// FuzzRedisStreamID checks that a parsed stream ID prints back the same and
// that order is the numeric one.
func FuzzRedisStreamID(f *testing.F) {
	for _, s := range []string{"0-0", "1526919030474-55", "18446744073709551615-18446744073709551615", "1-", "-1", "x-y", "01-2"} {
		f.Add(s, "1-1")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		x, okA := parseRedisStreamID(a)
		y, okB := parseRedisStreamID(b)
		if okA {
			if back, ok := parseRedisStreamID(x.String()); !ok || back != x {
				t.Fatalf("%q → %v → %q does not read back", a, x, x.String())
			}
		}
		if okA && okB && x.less(y) && y.less(x) {
			t.Fatalf("%v and %v are each less than the other", x, y)
		}
	})
}

// TestNewRedisClientClusterReload checks that only a Cluster client is
// built by hand, and that it reloads its slot map every redisClusterReload.
func TestNewRedisClientClusterReload(t *testing.T) {
	for _, tt := range []struct {
		name    string
		opts    Options
		cluster bool
	}{
		{"standalone", Options{Addrs: []string{"a:1"}}, false},
		{"sentinel", Options{Addrs: []string{"a:1", "b:2"}, MasterName: "m"}, false},
		{"several addresses", Options{Addrs: []string{"a:1", "b:2"}}, true},
		{"one address, cluster", Options{Addrs: []string{"a:1"}, Cluster: true}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			u, err := redisUniversalOptions(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			c := newRedisClient(u)
			defer c.Close()
			cc, isCluster := c.(*redis.ClusterClient)
			if isCluster != tt.cluster {
				t.Fatalf("client %T, want a Cluster client: %v", c, tt.cluster)
			}
			if isCluster && cc.Options().ClusterStateReloadInterval != redisClusterReload {
				t.Errorf("slot map reloaded every %v, want %v", cc.Options().ClusterStateReloadInterval, redisClusterReload)
			}
		})
	}
}
