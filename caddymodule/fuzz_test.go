package caddymodule

import (
	"encoding/json"
	"testing"
)

// FuzzCaddyfile feeds arbitrary text to the access_auth global option and
// to the access_auth and access_auth_admin directives: the parsers must
// return an error or valid JSON, never panic.
func FuzzCaddyfile(f *testing.F) {
	for _, seed := range []string{
		"orders",
		"orders {\nenvironment test\nschemes jdcloud2 sigv4\nmax_skew 5m\nmax_body 1MiB\n}",
		"{\ngroup g\nreplay_protection local\nforward_identity off\nhide_credentials\n}",
		"{\ngroup g\ndebug_signature\nschemes jdcloud2 hmac\n}",
		"{\nmaster_key {env.K} c2hvcnQ=\nstore redis redis://a:1 http://b\n}",
		"{\nstore redis redis://a:1 {\ndb 1\n}\n}",
		"{\nstore redis {\naddrs a:1 b:2\nmaster_name m\ntls\n}\nmaster_key {env.K}\n}",
		"{\ncache {\nmax_entries 10\nttl 1m\n}\nmax_stale 1s\nlocal_nonces 4096\n}",
		"{\nbody_buffer {\nmax_bytes 1GiB\nmax_bodies 256\n}\n}",
		"{\ntoken a b\nconsole off\n}",
		"{\ntoken 0123456789abcdef0123456789abcdef {env.T}\n}",
		"a b c {\n}}",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, input := range []string{
			":8080 {\naccess_auth " + s + "\n}",
			":8080 {\naccess_auth_admin " + s + "\n}",
			"{\naccess_auth " + s + "\n}\n:8080 {\nrespond ok\n}",
		} {
			out, err := adapt(t, input)
			if err == nil && !json.Valid([]byte(out)) {
				t.Fatalf("adapted %q to invalid JSON %q", input, out)
			}
		}
	})
}
