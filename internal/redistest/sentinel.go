package redistest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// MasterName is the name the sentinels of StartSentinel monitor.
const MasterName = "mymaster"

// Sentinel is a monitored master with one replica and three sentinels. The
// sentinels declare a master down after one second without an answer, so a
// killed master fails over within a few seconds.
type Sentinel struct {
	Master    *Server
	Replica   *Server
	Sentinels []*Server
}

// SentinelAddrs returns the sentinels' addresses.
func (s *Sentinel) SentinelAddrs() []string {
	return addrsOf(s.Sentinels)
}

// StartSentinel starts the setup and waits until the replica is in sync and
// every sentinel knows the replica and the other sentinels.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	bin := requireRedis(t)
	s := &Sentinel{}
	s.Master = startServer(t, bin, t.TempDir(), dialOptions{}, serverArgs)
	s.Replica = startServer(t, bin, t.TempDir(), dialOptions{}, func(port int, dir string) []string {
		return append(serverArgs(port, dir), "--replicaof", "127.0.0.1", strconv.Itoa(s.Master.Port))
	})
	for range 3 {
		dir := t.TempDir()
		sn := startServer(t, bin, dir, dialOptions{}, func(port int, dir string) []string {
			// A sentinel rewrites its configuration file, so it gets one of its own.
			conf := filepath.Join(dir, "sentinel.conf")
			text := strings.Join([]string{
				"port " + strconv.Itoa(port),
				"bind 127.0.0.1",
				"dir " + dir,
				"logfile " + filepath.Join(dir, "redis.log"),
				fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 2", MasterName, s.Master.Port),
				"sentinel down-after-milliseconds " + MasterName + " 1000",
				"sentinel failover-timeout " + MasterName + " 5000",
				"sentinel parallel-syncs " + MasterName + " 1",
			}, "\n") + "\n"
			if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
				t.Fatalf("redistest: write %s: %v", conf, err)
			}
			return []string{conf, "--sentinel"}
		})
		s.Sentinels = append(s.Sentinels, sn)
	}
	WaitInSync(t, s.Replica)
	for _, sn := range s.Sentinels {
		waitUntil(t, 30*time.Second, "sentinel "+sn.Addr+" sees the setup", func(ctx context.Context) error {
			c := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr})
			defer c.Close()
			m, err := c.Master(ctx, MasterName).Result()
			if err != nil {
				return err
			}
			if m["num-slaves"] != "1" || m["num-other-sentinels"] != "2" {
				return fmt.Errorf("master state %v", m)
			}
			return nil
		})
	}
	return s
}

// Logs returns the tails of the sentinels' logs, for failure messages.
func (s *Sentinel) Logs() string {
	var b strings.Builder
	for _, sn := range s.Sentinels {
		fmt.Fprintf(&b, "--- sentinel %s\n%s\n", sn.Addr, sn.Log())
	}
	return b.String()
}

// FailoverTimeout bounds a failover in tests. A sentinel that notices a
// stall of its timer (a loaded machine) enters TILT mode and does nothing
// for 30 seconds, so the bound leaves room for one TILT.
const FailoverTimeout = 60 * time.Second

// MasterAddr asks the first sentinel that answers for the current master.
func (s *Sentinel) MasterAddr(ctx context.Context) (string, error) {
	var last error
	for _, sn := range s.Sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr})
		addr, err := c.GetMasterAddrByName(ctx, MasterName).Result()
		c.Close()
		if err == nil {
			return addr[0] + ":" + addr[1], nil
		}
		last = err
	}
	return "", last
}

// client returns a short-lived client for setup checks.
func client(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
}

// waitUntil polls check until it succeeds, failing the test after timeout
// with the last error.
func waitUntil(t testing.TB, timeout time.Duration, what string, check func(context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := check(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: timed out waiting for %s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
