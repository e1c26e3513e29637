//go:build !race

package enforcement

const raceEnabled = false
