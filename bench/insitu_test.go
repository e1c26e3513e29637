//go:build linux

package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// The frames that split the access_auth handler's CPU time in a profile of
// Caddy: its ServeHTTP, the check it calls, and the handler chain it hands
// the request to; and the package of replay protection on the node (the
// check's micro-benchmark runs without it).
const (
	handlerFrame  = "github.com/accessauth/caddy-access-auth/caddymodule.(*Handler).ServeHTTP"
	checkFrame    = "github.com/accessauth/caddy-access-auth/enforcement.(*Checker).CheckAt"
	nextFrame     = "github.com/caddyserver/caddy/v2/modules/caddyhttp.HandlerFunc.ServeHTTP"
	replayPackage = "github.com/accessauth/caddy-access-auth/replay."
)

// handlerShares is where a CPU profile of Caddy says its time went: the
// fractions of all samples spent in the check (CheckAt and what it calls;
// of that, in the node's replay protection) and in the rest of the
// access_auth handler (its ServeHTTP, but the check and the handlers after
// it). They tell the check's own cost in situ from the cost of what
// surrounds it (docs/operations.md).
type handlerShares struct {
	check, replay, handler float64
	samples                int
}

// profileShares reads the CPU profile at path with `go tool pprof -traces`
// (the toolchain that built Caddy for the benchmark) and splits its samples.
func profileShares(path string) (handlerShares, error) {
	out, err := exec.Command("go", "tool", "pprof", "-traces", "-symbolize=none", path).Output()
	if err != nil {
		return handlerShares{}, fmt.Errorf("go tool pprof -traces %s: %w", path, err)
	}
	return splitTraces(out)
}

// splitTraces splits the stacks of `go tool pprof -traces` by the frame
// the handler's ServeHTTP called. Each stack follows a "-----------+-----"
// line: its value and leaf frame, then its callers, one a line.
func splitTraces(traces []byte) (handlerShares, error) {
	var total, check, replay, handler time.Duration
	var s handlerShares
	var frames []string
	var value time.Duration
	flush := func() {
		if len(frames) == 0 {
			return
		}
		total += value
		s.samples++
		if i := slices.Index(frames, handlerFrame); i > 0 {
			switch frames[i-1] {
			case checkFrame:
				check += value
				if slices.ContainsFunc(frames[:i], func(f string) bool { return strings.HasPrefix(f, replayPackage) }) {
					replay += value
				}
			case nextFrame:
			default:
				handler += value
			}
		} else if i == 0 {
			handler += value
		}
		frames = frames[:0]
	}
	inStack, first := false, false
	sc := bufio.NewScanner(bytes.NewReader(traces))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "-----------+"):
			flush()
			inStack, first = true, true
		case !inStack || line == "":
		case first:
			raw, leaf, _ := strings.Cut(line, " ")
			d, err := time.ParseDuration(raw)
			if err != nil {
				return handlerShares{}, fmt.Errorf("profile traces: %q: %w", line, err)
			}
			value, first = d, false
			frames = append(frames, frameName(leaf))
		default:
			frames = append(frames, frameName(line))
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return handlerShares{}, err
	}
	if total == 0 {
		return handlerShares{}, fmt.Errorf("profile traces: no samples")
	}
	s.check = float64(check) / float64(total)
	s.replay = float64(replay) / float64(total)
	s.handler = float64(handler) / float64(total)
	return s, nil
}

// frameName is a function's name without pprof's note of inlining.
func frameName(s string) string {
	return strings.TrimSuffix(strings.TrimSpace(s), " (inline)")
}
