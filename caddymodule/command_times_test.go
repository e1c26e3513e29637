package caddymodule

import (
	"testing"
	"time"
)

func TestParseFlagTime(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		value string
		want  time.Time // zero: an error
	}{
		{"2031-06-07T08:09:10Z", time.Date(2031, 6, 7, 8, 9, 10, 0, time.UTC)},
		{"2031-06-07T08:09:10+02:00", time.Date(2031, 6, 7, 6, 9, 10, 0, time.UTC)},
		{"720h", now.Add(720 * time.Hour)},
		{"1h30m", now.Add(90 * time.Minute)},
		{"0s", now},
		{"-1h", time.Time{}},
		{"tomorrow", time.Time{}},
		{"2031-06-07", time.Time{}},
		{"9999-12-31T23:59:59-23:59", time.Time{}},
		{"", time.Time{}},
	} {
		got, err := parseFlagTime(tc.value, now)
		switch {
		case tc.want.IsZero() && err == nil:
			t.Errorf("%q: got %v, want an error", tc.value, got)
		case !tc.want.IsZero() && (err != nil || !got.Equal(tc.want)):
			t.Errorf("%q: got %v, %v, want %v", tc.value, got, err, tc.want)
		}
	}
}

func TestTimeValueClearable(t *testing.T) {
	for _, tc := range []struct {
		value     string
		clearable bool
		ok        bool
	}{
		{"never", true, true},
		{"", true, true},
		{"never", false, false},
		{"", false, false},
	} {
		v := &timeValue{clearable: tc.clearable}
		err := v.Set(tc.value)
		if (err == nil) != tc.ok {
			t.Errorf("Set(%q) clearable=%v: %v, want ok=%v", tc.value, tc.clearable, err, tc.ok)
		}
		if err == nil && v.String() != tc.value {
			t.Errorf("Set(%q): String() = %q", tc.value, v.String())
		}
	}
}

// FuzzParseFlagTime: any value gives a time that writes as RFC 3339 and
// reads back equal, or an error; never a panic.
func FuzzParseFlagTime(f *testing.F) {
	for _, seed := range []string{"2031-06-07T08:09:10Z", "720h", "never", "", "-1h", "9999-12-31T23:59:59-23:59", "2562047h"} {
		f.Add(seed)
	}
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, value string) {
		got, err := parseFlagTime(value, now)
		if err != nil {
			return
		}
		back, err := time.Parse(time.RFC3339, got.UTC().Format(time.RFC3339))
		if err != nil || !back.Equal(got.Truncate(time.Second)) {
			t.Fatalf("%q: %v writes as a time that reads back as %v, %v", value, got, back, err)
		}
	})
}
