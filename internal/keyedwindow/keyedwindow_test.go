package keyedwindow

import (
	"testing"
	"time"
)

func TestCounter(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := New(time.Minute, 2)
	for _, step := range []struct {
		name string
		key  string
		at   time.Duration
		want int
	}{
		{"first event", "a", 0, 1},
		{"second event in the window", "a", 30 * time.Second, 2},
		{"another key", "b", 40 * time.Second, 1},
		{"a third key while two are counted", "c", 50 * time.Second, 0},
		{"a counted key still counts", "b", 55 * time.Second, 2},
		{"a's window has passed: it starts again", "a", 61 * time.Second, 1},
		{"b's window has passed: room for c", "c", 101 * time.Second, 1},
	} {
		if got := c.Add(step.key, t0.Add(step.at)); got != step.want {
			t.Fatalf("%s: Add(%q) = %d, want %d", step.name, step.key, got, step.want)
		}
	}
	if n, resetIn := c.Count("c", t0.Add(111*time.Second)); n != 1 || resetIn != 50*time.Second {
		t.Errorf("Count(c) = %d, %v; want 1, 50s", n, resetIn)
	}
	if n, resetIn := c.Count("c", t0.Add(161*time.Second)); n != 0 || resetIn != 0 {
		t.Errorf("Count(c) after its window = %d, %v", n, resetIn)
	}
	c.Reset("a")
	if n, _ := c.Count("a", t0.Add(62*time.Second)); n != 0 {
		t.Errorf("Count(a) after Reset = %d", n)
	}
}
