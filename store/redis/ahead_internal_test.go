package redisstore

import "testing"

func TestRecentWritesOnlyOwn(t *testing.T) {
	var r recentWrites
	wrote := func(ids ...string) map[redisRecordRef]redisPendingWrite {
		m := map[redisRecordRef]redisPendingWrite{}
		for _, id := range ids {
			m[redisRecordRef{"t", id}] = redisPendingWrite{value: []byte("v")}
		}
		return m
	}
	read := map[redisRecordRef][]byte{{"t", "a"}: []byte("v"), {"t", "b"}: nil}
	r.add("m1", 10, wrote("c"))
	r.add("m1", 11, wrote("d", "e"))
	r.add("m1", 12, wrote("a"))
	tests := []struct {
		name     string
		master   string
		from, to int64
		want     bool
	}{
		{"nothing in between", "m1", 9, 9, true},
		{"own writes of other records", "m1", 9, 11, true},
		{"own write of a record read (12)", "m1", 11, 12, false},
		{"a write not this process's (13)", "m1", 12, 13, false},
		{"the count went back", "m1", 11, 10, false},
		{"more than are kept", "m1", 5, 11, false},
		{"another master, nothing in between", "m2", 11, 11, true},
		{"another master", "m2", 9, 11, false},
	}
	for _, tt := range tests {
		if got := r.onlyOwn(tt.master, tt.from, tt.to, read); got != tt.want {
			t.Errorf("%s: onlyOwn(%s, %d, %d) = %v, want %v", tt.name, tt.master, tt.from, tt.to, got, tt.want)
		}
	}
	// Writes on a new master replace those of the old one.
	r.add("m2", 1, wrote("x"))
	if r.onlyOwn("m1", 9, 11, read) {
		t.Error("writes of the old master still count once a new one is written to")
	}
	if !r.onlyOwn("m2", 0, 1, read) {
		t.Error("the new master's write does not count")
	}
}
