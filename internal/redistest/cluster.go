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

// Cluster is a Redis Cluster of three masters, with or without a replica
// each.
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
	return startCluster(t, 0, 2000)
}

// StartClusterWithReplicas starts three masters and a replica of each,
// with a node timeout of one second, so a killed master's replica is
// promoted within a few seconds. It returns once every replica is in sync.
func StartClusterWithReplicas(t testing.TB) *Cluster {
	t.Helper()
	c := startCluster(t, 1, 1000)
	waitUntil(t, 20*time.Second, "three replicas in sync", func(ctx context.Context) error {
		synced := 0
		for _, n := range c.Nodes {
			if info, err := replication(ctx, n); err == nil && strings.Contains(info, "master_link_status:up") {
				synced++
			}
		}
		if synced != 3 {
			return fmt.Errorf("%d replicas in sync", synced)
		}
		return nil
	})
	return c
}

// startCluster starts 3 × (1 + replicas) nodes with the node timeout in
// milliseconds and joins them.
func startCluster(t testing.TB, replicas, nodeTimeout int) *Cluster {
	t.Helper()
	bin := requireRedis(t)
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatalf("redistest: redis-cli is needed to create a cluster: %v", err)
	}
	c := &Cluster{}
	for range 3 * (1 + replicas) {
		n := startServer(t, bin, t.TempDir(), dialOptions{}, func(port int, dir string) []string {
			return append(serverArgs(port, dir),
				"--cluster-enabled", "yes",
				"--cluster-config-file", "nodes.conf",
				"--cluster-node-timeout", strconv.Itoa(nodeTimeout),
				// An explicit bus port: port+10000 may be taken or out of range.
				"--cluster-port", strconv.Itoa(testport.Free(t)),
			)
		})
		c.Nodes = append(c.Nodes, n)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	known := "cluster_known_nodes:" + strconv.Itoa(len(c.Nodes))
	for _, n := range c.Nodes {
		waitUntil(t, 20*time.Second, "cluster_state:ok on "+n.Addr, func(ctx context.Context) error {
			rc := client(n.Addr)
			defer rc.Close()
			info, err := rc.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, known) {
				return fmt.Errorf("cluster info: %s", info)
			}
			return nil
		})
	}
	return c
}

// Shard returns the master that serves key's slot and its replica.
func (c *Cluster) Shard(t testing.TB, key string) (master, replica *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rc := client(c.Nodes[0].Addr)
	defer rc.Close()
	slot, err := rc.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		t.Fatalf("redistest: CLUSTER KEYSLOT: %v", err)
	}
	slots, err := rc.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatalf("redistest: CLUSTER SLOTS: %v", err)
	}
	for _, s := range slots {
		if int64(s.Start) <= slot && slot <= int64(s.End) {
			master = c.node(s.Nodes[0].Addr)
		}
	}
	if master == nil {
		t.Fatalf("redistest: no node serves slot %d", slot)
	}
	of := "master_port:" + strconv.Itoa(master.Port) + "\r\n"
	for _, n := range c.Nodes {
		if info, err := replication(ctx, n); err == nil && strings.Contains(info, of) {
			return master, n
		}
	}
	t.Fatalf("redistest: the master of slot %d, %s, has no replica", slot, master.Addr)
	return nil, nil
}

// node returns the node listening on addr, or nil.
func (c *Cluster) node(addr string) *Server {
	for _, n := range c.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

// replication returns the server's INFO replication.
func replication(ctx context.Context, s *Server) (string, error) {
	rc := client(s.Addr)
	defer rc.Close()
	return rc.Info(ctx, "replication").Result()
}
