package redistest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// CutReplicas disconnects the server's replicas and keeps them off: the
// default user may no longer run SYNC or PSYNC, so each reconnection is
// refused, while clients and Sentinel or Cluster traffic go on. The server
// then commits writes that no replica receives — a replica stalled or cut
// off by the network, as a promotion finds it.
func (s *Server) CutReplicas() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rc := client(s.Addr)
	defer rc.Close()
	if err := rc.Do(ctx, "ACL", "SETUSER", "default", "-sync", "-psync").Err(); err != nil {
		s.t.Fatalf("redistest: deny replication on %s: %v", s.Addr, err)
	}
	if err := rc.Do(ctx, "CLIENT", "KILL", "TYPE", "replica").Err(); err != nil {
		s.t.Fatalf("redistest: disconnect the replicas of %s: %v", s.Addr, err)
	}
	waitUntil(s.t, 5*time.Second, "the replicas of "+s.Addr+" to be gone", func(ctx context.Context) error {
		info, err := rc.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "connected_slaves:0") {
			return fmt.Errorf("replication: %s", info)
		}
		return nil
	})
}

// Role returns the server's replication role: master or slave.
func (s *Server) Role(ctx context.Context) (string, error) {
	rc := client(s.Addr)
	defer rc.Close()
	role, err := rc.Do(ctx, "ROLE").Slice()
	if err != nil {
		return "", err
	}
	if len(role) == 0 {
		return "", fmt.Errorf("ROLE answered nothing")
	}
	name, _ := role[0].(string)
	return name, nil
}

// WaitInSync waits until the replica's link to its master is up.
func WaitInSync(t testing.TB, replica *Server) {
	t.Helper()
	waitUntil(t, 20*time.Second, "replica "+replica.Addr+" in sync", func(ctx context.Context) error {
		info, err := replication(ctx, replica)
		if err != nil {
			return err
		}
		if !strings.Contains(info, "master_link_status:up") {
			return fmt.Errorf("replication: %s", info)
		}
		return nil
	})
}
