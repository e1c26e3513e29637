package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/internal/testport"
)

// Cluster is a Redis Cluster of three masters without replicas.
type Cluster struct {
	Nodes []*Server
}

// Addrs returns the nodes' addresses.
func (c *Cluster) Addrs() []string {
	return addrsOf(c.Nodes)
}

// StartCluster starts three cluster-enabled servers, joins them with
// `redis-cli --cluster create` and waits until every node reports
// cluster_state:ok.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	bin := requireRedis(t)
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redistest: redis-cli is needed to create a cluster: %v", err)
	}
	c := &Cluster{}
	for range 3 {
		n := startServer(t, bin, t.TempDir(), dialOptions{}, func(port int, dir string) []string {
			return append(serverArgs(port, dir),
				"--cluster-enabled", "yes",
				"--cluster-config-file", "nodes.conf",
				"--cluster-node-timeout", "2000",
				// An explicit bus port: port+10000 may be taken or out of range.
				"--cluster-port", strconv.Itoa(testport.Free(t)),
			)
		})
		c.Nodes = append(c.Nodes, n)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	for _, n := range c.Nodes {
		waitUntil(t, 20*time.Second, "cluster_state:ok on "+n.Addr, func(ctx context.Context) error {
			rc := client(n.Addr)
			defer rc.Close()
			info, err := rc.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:3") {
				return fmt.Errorf("cluster info: %s", info)
			}
			return nil
		})
	}
	return c
}
