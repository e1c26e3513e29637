package enforcement

import (
	"strings"
	"testing"
	"time"
)

func TestLimitRules(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		wantErr string // "" = accepted
	}{
		{"max_skew default", CheckMaxSkew(0), ""},
		{"max_skew 7d", CheckMaxSkew(MaxMaxSkew), ""},
		{"max_skew negative", CheckMaxSkew(-time.Second), "max_skew: must not be negative"},
		{"max_skew past 7d", CheckMaxSkew(MaxMaxSkew + time.Second), "max_skew: at most 7d"},
		{"max_body default", CheckMaxBody(0), ""},
		{"max_body negative", CheckMaxBody(-1), "max_body: must not be negative"},
	} {
		if (tc.err == nil) != (tc.wantErr == "") || tc.err != nil && !strings.Contains(tc.err.Error(), tc.wantErr) {
			t.Errorf("%s: %v, want %q", tc.name, tc.err, tc.wantErr)
		}
	}
}

// NewChecker and the Caddy config refuse a bad limit in the same words.
func TestNewCheckerWordsLimitsAsTheConfig(t *testing.T) {
	for _, cfg := range []Config{{Group: "g", MaxSkew: -time.Second}, {Group: "g", MaxSkew: 8 * 24 * time.Hour}, {Group: "g", MaxBody: -1}} {
		want := CheckMaxSkew(cfg.MaxSkew)
		if want == nil {
			want = CheckMaxBody(cfg.MaxBody)
		}
		_, err := NewChecker(cfg, new(fakeKeys))
		if err == nil || !strings.HasSuffix(err.Error(), want.Error()) {
			t.Errorf("NewChecker(%+v): %v, want it to end in %q", cfg, err, want)
		}
	}
}
