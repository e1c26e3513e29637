package caddymodule

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestKeyUsagePrint(t *testing.T) {
	tests := []struct {
		name, answer, want string
	}{
		{"nothing", `{"budgets":[],"daily":[]}`, `Quota budgets: none (no plan with a quota applies to this key)

Daily requests: none in the last 90 days
`},
		{"budgets and days", `{"budgets":[
			{"scope":"authorization","group":null,"plan":"gold","rate":null,"quota":{"requests":100000,"period":"month"},"used":4210,"remaining":95790,"resets_at":"2027-01-01T00:00:00Z"},
			{"scope":"group","group":"orders","plan":"day","rate":{"requests":5,"per":"1s"},"quota":{"requests":1000,"period":"day"},"used":12,"remaining":988,"resets_at":"2026-12-05T00:00:00Z"}],
			"daily":[{"date":"2026-12-04","group":"orders","allowed":130,"limited":4},{"date":"2026-12-03","group":"pay","allowed":7,"limited":0}]}`,
			`Quota budgets
SCOPE          GROUP   PLAN  QUOTA         USED  REMAINING  RESETS AT (UTC)
authorization  (all)   gold  100000/month  4210  95790      2027-01-01 00:00:00
group          orders  day   1000/day      12    988        2026-12-05 00:00:00

Daily requests (UTC days, newest first)
DATE        GROUP   ALLOWED  LIMITED
2026-12-04  orders  130      4
2026-12-03  pay     7        0
total               137      4
`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var u keyUsageAnswer
			if err := json.Unmarshal([]byte(tc.answer), &u); err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			if err := u.print(&out); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("printed\n%s\nwant\n%s", out.String(), tc.want)
			}
		})
	}
}
