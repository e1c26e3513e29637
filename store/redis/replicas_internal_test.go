package redisstore

import (
	"strings"
	"testing"
	"time"
)

func TestParseRedisReplication(t *testing.T) {
	tests := []struct {
		name     string
		info     string
		master   string
		replicas int
	}{
		{"master with a replica", "# Replication\r\nrole:master\r\nconnected_slaves:1\r\n" +
			"slave0:ip=127.0.0.1,port=7001,state=online,offset=42,lag=0\r\nmaster_replid:abc\r\nmaster_replid2:0000\r\n", "abc", 1},
		{"master alone", "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_replid:def\r\n", "def", 0},
		{"replica", "# Replication\r\nrole:slave\r\nmaster_host:127.0.0.1\r\nconnected_slaves:0\r\nmaster_replid:abc\r\n", "", 0},
		{"bare newlines", "role:master\nconnected_slaves:2\nmaster_replid:x\n", "x", 2},
		{"negative count", "role:master\r\nconnected_slaves:-3\r\nmaster_replid:x\r\n", "x", 0},
		{"empty", "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			master, replicas := parseRedisReplication(tt.info)
			if master != tt.master || replicas != tt.replicas {
				t.Errorf("parseRedisReplication = %q, %d; want %q, %d", master, replicas, tt.master, tt.replicas)
			}
		})
	}
}

func TestRedisReplicaTimeout(t *testing.T) {
	for _, tt := range []struct {
		size int
		want time.Duration
	}{
		{0, time.Second},
		{redisReplicaRate - 1, time.Second},
		{redisReplicaRate, 2 * time.Second},
		{10 * redisReplicaRate, 11 * time.Second},
	} {
		if got := redisReplicaTimeout(tt.size); got != tt.want {
			t.Errorf("redisReplicaTimeout(%d) = %v, want %v", tt.size, got, tt.want)
		}
	}
}

// FuzzParseRedisReplication feeds arbitrary text as INFO replication: a
// master ID comes only from a master's INFO, and the count is never
// negative.
func FuzzParseRedisReplication(f *testing.F) {
	for _, seed := range []string{
		"# Replication\r\nrole:master\r\nconnected_slaves:1\r\nmaster_replid:abc\r\n",
		"role:slave\r\nmaster_replid:abc\r\n",
		"role:master\nconnected_slaves:99999999999999999999\n",
		"connected_slaves:-1", ":", "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, info string) {
		master, replicas := parseRedisReplication(info)
		if replicas < 0 {
			t.Fatalf("%d replicas from %q", replicas, info)
		}
		if master != "" && !strings.Contains(info, "role:master") {
			t.Fatalf("master %q from %q, which names no master", master, info)
		}
	})
}
