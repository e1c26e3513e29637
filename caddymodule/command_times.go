package caddymodule

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"
)

// timeValue is a flag that takes a time as RFC 3339 or as a duration from
// now (720h), and holds it as RFC 3339 for the admin API; where the flag
// allows clearing, "never" or "" removes the time. A bad value fails the command line with
// an example instead of Go's time-format error from the API.
type timeValue struct {
	value     string
	clearable bool
}

// timeFlag defines a flag that takes a time.
func timeFlag(flags *pflag.FlagSet, name, usage string, clearable bool) {
	flags.Var(&timeValue{clearable: clearable}, name, usage+": RFC 3339 (2030-01-02T15:04:05Z) or a duration from now (720h)")
}

// parseFlagTime reads value as RFC 3339 or a duration from now, in the
// years RFC 3339 can write in UTC (the form the admin API is sent).
func parseFlagTime(value string, now time.Time) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, value)
	if err != nil {
		d, durationErr := time.ParseDuration(value)
		if durationErr != nil || d < 0 {
			return time.Time{}, fmt.Errorf("want an RFC 3339 time like 2030-01-02T15:04:05Z or a duration from now like 720h")
		}
		t = now.Add(d)
	}
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return time.Time{}, fmt.Errorf("the time must lie between the years 0001 and 9999 (UTC)")
	}
	return t, nil
}

func (v *timeValue) Set(value string) error {
	if (value == "never" || value == "") && v.clearable {
		v.value = value
		return nil
	}
	t, err := parseFlagTime(value, time.Now())
	if err != nil {
		if v.clearable {
			return fmt.Errorf("%w, or never", err)
		}
		return err
	}
	v.value = t.UTC().Format(time.RFC3339)
	return nil
}

func (v *timeValue) String() string { return v.value }

func (v *timeValue) Type() string { return "time" }

// Interface guards
var _ pflag.Value = (*timeValue)(nil)
