package enforcement

import "testing"

func TestParseReplayMode(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    ReplayMode
		wantErr bool
	}{
		{"", ReplayAuto, false},
		{"auto", ReplayAuto, false},
		{"store", ReplayStore, false},
		{"local", ReplayLocal, false},
		{"off", ReplayOff, false},
		{"Local", 0, true},
		{"always", 0, true},
	} {
		got, err := ParseReplayMode(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseReplayMode(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}
