package replay

import "fmt"

// Mode says where a route keeps the nonces it accepted: the
// replay_protection option (docs/replay-protection.md).
type Mode uint8

const (
	ModeAuto  Mode = iota // ModeStore with a shared store, else ModeLocal
	ModeStore             // the shared store (Redis), the node's table as stand-in
	ModeLocal             // the node's own table
	ModeOff               // none
)

var modes = map[string]Mode{"": ModeAuto, "auto": ModeAuto, "store": ModeStore, "local": ModeLocal, "off": ModeOff}

// ParseMode reads the replay_protection option; empty means auto.
func ParseMode(s string) (Mode, error) {
	m, ok := modes[s]
	if !ok {
		return 0, fmt.Errorf("unknown mode %q, expected auto, store, local or off", s)
	}
	return m, nil
}

// String is the mode's name in the replay_protection option.
func (m Mode) String() string {
	for name, mode := range modes {
		if mode == m && name != "" {
			return name
		}
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}
