// Package keyedwindow counts events per key (a client's address, an API
// key) in fixed time windows, in bounded memory: enough to log something
// once per key or to slow down a client that keeps failing.
package keyedwindow

import (
	"sync"
	"time"
)

// Counter counts events per key; a key's window starts at its first event
// and its count starts again once the window has passed. It is safe for
// concurrent use.
type Counter struct {
	window  time.Duration
	maxKeys int

	mu        sync.Mutex
	slots     map[string]slot
	lastSweep time.Time
}

type slot struct {
	start time.Time
	n     int
}

// New returns a Counter of windows of the given length that tracks at most
// maxKeys keys at a time.
func New(window time.Duration, maxKeys int) *Counter {
	return &Counter{window: window, maxKeys: maxKeys, slots: make(map[string]slot)}
}

// Add counts an event of key at now and returns the number of events of
// key in its window, this one included. When maxKeys keys are in their
// window already and key is not one of them, the event is not counted and
// Add returns 0: a flood of new keys neither grows memory nor pushes out
// the keys being counted.
func (c *Counter) Add(key string, now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.slots[key]
	if !ok || now.Sub(s.start) >= c.window {
		if !ok && len(c.slots) >= c.maxKeys && !c.sweepLocked(now) {
			return 0
		}
		s = slot{start: now}
	}
	s.n++
	c.slots[key] = s
	return s.n
}

// Count returns the number of events of key in its window at now, and
// how long until that window ends (0, 0 when key has none).
func (c *Counter) Count(key string, now time.Time) (int, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.slots[key]; ok && now.Sub(s.start) < c.window {
		return s.n, s.start.Add(c.window).Sub(now)
	}
	return 0, 0
}

// Reset forgets key's events.
func (c *Counter) Reset(key string) {
	c.mu.Lock()
	delete(c.slots, key)
	c.mu.Unlock()
}

// sweepLocked drops the keys whose window has passed and reports whether
// there is room for another. It runs at most once per second, so a flood
// of new keys costs no full scan each.
func (c *Counter) sweepLocked(now time.Time) bool {
	if now.Sub(c.lastSweep) >= time.Second {
		c.lastSweep = now
		for k, s := range c.slots {
			if now.Sub(s.start) >= c.window {
				delete(c.slots, k)
			}
		}
	}
	return len(c.slots) < c.maxKeys
}
