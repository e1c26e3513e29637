package enforcement

import "fmt"

// ReplayMode says where a route keeps the nonces it accepted: the
// replay_protection option (docs/replay-protection.md).
type ReplayMode uint8

const (
	ReplayAuto  ReplayMode = iota // ReplayStore with a shared store, else ReplayLocal
	ReplayStore                   // the shared store (Redis), the node's table as stand-in
	ReplayLocal                   // the node's own table
	ReplayOff                     // none
)

var replayModes = map[string]ReplayMode{"": ReplayAuto, "auto": ReplayAuto, "store": ReplayStore, "local": ReplayLocal, "off": ReplayOff}

// ParseReplayMode reads the replay_protection option; empty means auto.
func ParseReplayMode(s string) (ReplayMode, error) {
	m, ok := replayModes[s]
	if !ok {
		return 0, fmt.Errorf("unknown mode %q, expected auto, store, local or off", s)
	}
	return m, nil
}
