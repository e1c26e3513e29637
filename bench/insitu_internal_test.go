//go:build linux

package bench

import (
	"math"
	"strings"
	"testing"
)

// TestSplitTraces splits a profile's stacks as pprof prints them: by the
// frame the handler called, whatever the depth, values in any unit.
func TestSplitTraces(t *testing.T) {
	stack := func(value string, frames ...string) string {
		return "-----------+-------------------------------------------------------\n      " + value + "   " +
			strings.Join(frames, "\n             ") + "\n"
	}
	const serve = "net/http.(*conn).serve"
	traces := "File: caddy\nType: cpu\nDuration: 9s, Total samples = 100ms (1%)\n" +
		stack("30ms", "crypto/sha256.block", "github.com/accessauth/caddy-access-auth/enforcement.(*Checker).run",
			checkFrame+" (inline)", handlerFrame, nextFrame, serve) +
		stack("20ms", "runtime.mapassign_faststr", handlerFrame, nextFrame, serve) +
		stack("40ms", "replay.prefetchBucket", replayPackage+"(*LocalNonces).Prepare", "github.com/accessauth/caddy-access-auth/enforcement.(*Checker).check",
			checkFrame, handlerFrame, nextFrame, serve) +
		stack("10ms", handlerFrame, nextFrame, serve) +
		stack("25ms", "zap.(*Logger).With", nextFrame, handlerFrame, nextFrame, serve) +
		stack("15ms", "runtime.gcBgMarkWorker") +
		"-----------+-------------------------------------------------------\n"
	got, err := splitTraces([]byte(traces))
	if err != nil {
		t.Fatal(err)
	}
	if got.samples != 6 || math.Abs(got.check-70.0/140) > 1e-9 || math.Abs(got.replay-40.0/140) > 1e-9 || math.Abs(got.handler-30.0/140) > 1e-9 {
		t.Errorf("got %+v, want 6 samples, check 70/140, replay 40/140, handler 30/140", got)
	}
	for _, bad := range []string{"", "File: caddy\n", stack("ten", "runtime.futex")} {
		if _, err := splitTraces([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
