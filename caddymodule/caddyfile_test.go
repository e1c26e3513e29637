package caddymodule

import (
	"fmt"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

// adapt runs the Caddyfile adapter over input.
func adapt(t *testing.T, input string) (string, error) {
	t.Helper()
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), nil)
	return string(out), err
}

const testMasterKey = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes

// testAdminToken is a token of the shortest length access_auth_admin takes.
const testAdminToken = "0123456789abcdef0123456789abcdef"

func TestCaddyfileAdapt(t *testing.T) {
	site := func(handler string) string { return ":8080 {\n" + handler + "\nrespond ok\n}" }
	global := func(opt string) string { return "{\n" + opt + "\n}\n:8080 {\nrespond ok\n}" }
	tests := []struct {
		name    string
		input   string
		want    []string // fragments of the adapted JSON
		wantErr string
	}{
		{
			name:  "shorthand group",
			input: site("access_auth orders"),
			want:  []string{`{"group":"orders","handler":"access_auth"}`},
		},
		{
			name: "every handler option",
			input: site(`access_auth /api/* {
				group orders
				environment test
				schemes jdcloud2 sigv4
				max_skew 5m
				replay_protection local
				max_body 1MiB
				allow_unsigned_payload
				region cn-north-1
				service apigw
				hide_credentials
				forward_identity off
				rate_limit_headers off
			}`),
			want: []string{
				`"allow_unsigned_payload":true`, `"environment":"test"`, `"forward_identity":false`, `"rate_limit_headers":false`,
				`"group":"orders"`, `"handler":"access_auth"`, `"hide_credentials":true`, `"max_body":1048576`,
				`"max_skew":300000000000`, `"region":"cn-north-1"`, `"replay_protection":"local"`,
				`"schemes":["jdcloud2","sigv4"]`, `"service":"apigw"`, `"path":["/api/*"]`,
			},
		},
		{
			// Every environment a binding may name (free names, docs/admin-api.md).
			name:  "environment the store accepts",
			input: site("access_auth orders {\nenvironment Pre.Release-2\n}"),
			want:  []string{`"environment":"Pre.Release-2"`},
		},
		{
			name:  "decimal size",
			input: site("access_auth orders {\nmax_body 100MB\n}"),
			want:  []string{`"max_body":100000000`},
		},
		{
			name:  "admin handler",
			input: site("access_auth_admin /access-auth/* {\ntoken " + testAdminToken + " {env.ADMIN_TOKEN}\nconsole off\n}"),
			want:  []string{`{"console":false,"handler":"access_auth_admin","tokens":["` + testAdminToken + `","{env.ADMIN_TOKEN}"]}`},
		},
		{
			name:  "global file store",
			input: global("access_auth {\nstore file /tmp/x/store.db\ncache {\nmax_entries 10\nttl 1m\nnegative_ttl 2s\n}\nmax_stale 3m\nlocal_nonces 4000000\naudit_retention 30d\n}"),
			want:  []string{`"access_auth":{"store":{"type":"file","path":"/tmp/x/store.db"},"cache":{"max_entries":10,"ttl":60000000000,"negative_ttl":2000000000},"max_stale":180000000000,"local_nonces":4000000,"audit_retention":2592000000000000}`},
		},
		{
			name:  "global body buffer",
			input: global("access_auth {\nbody_buffer {\nmax_bytes 2GiB\nmax_bodies 64\n}\n}"),
			want:  []string{`"access_auth":{"body_buffer":{"max_bytes":2147483648,"max_bodies":64}}`},
		},
		{
			name:  "global file store default path",
			input: global("access_auth {\nstore file\n}"),
			want:  []string{`"access_auth":{"store":{"type":"file"}}`},
		},
		{
			name:  "global redis URLs",
			input: global("access_auth {\nstore redis redis://a:6379/0 rediss://b:6380\nkey_prefix gw\nmaster_key " + testMasterKey + " {env.OLD_KEY}\n}"),
			want:  []string{`"access_auth":{"store":{"type":"redis","urls":["redis://a:6379/0","rediss://b:6380"]},"key_prefix":"gw","master_key":["` + testMasterKey + `","{env.OLD_KEY}"]}`},
		},
		{
			name: "global redis block",
			input: global(`access_auth {
				store redis {
					addrs s1:26379 s2:26379
					master_name mymaster
					username u
					password p
					db 2
					tls
				}
				master_key {env.MASTER_KEY}
			}`),
			want: []string{`"store":{"type":"redis","addrs":["s1:26379","s2:26379"],"master_name":"mymaster","username":"u","password":"p","db":2,"tls":true},"master_key":["{env.MASTER_KEY}"]`},
		},
		{
			name:  "global redis URL placeholder",
			input: global("access_auth {\nstore redis {env.REDIS_URL}\nmaster_key {env.MASTER_KEY}\n}"),
			want:  []string{`"store":{"type":"redis","urls":["{env.REDIS_URL}"]},"master_key":["{env.MASTER_KEY}"]`},
		},
		// Errors name the directive, the subdirective and what was expected.
		{name: "missing group", input: site("access_auth"), wantErr: "access_auth: group: required"},
		{name: "bad group", input: site("access_auth Orders"), wantErr: `access_auth: group: invalid name "Orders"`},
		{name: "two args", input: site("access_auth a b"), wantErr: `access_auth: unexpected argument "b"`},
		{name: "bad duration", input: site("access_auth a {\nmax_skew x\n}"), wantErr: `access_auth: max_skew: invalid duration "x"`},
		{name: "bad size", input: site("access_auth a {\nmax_body lots\n}"), wantErr: `access_auth: max_body: invalid size "lots"`},
		{name: "bad scheme", input: site("access_auth a {\nschemes jdcloud2 hmac\n}"), wantErr: `access_auth: schemes: unknown scheme "hmac"`},
		{name: "no schemes", input: site("access_auth a {\nschemes\n}"), wantErr: "access_auth: schemes: expected one or more"},
		{name: "bad replay", input: site("access_auth a {\nreplay_protection always\n}"), wantErr: `access_auth: replay_protection: unknown mode "always"`},
		{name: "bad forward", input: site("access_auth a {\nforward_identity yes\n}"), wantErr: `access_auth: forward_identity: expected on or off, got "yes"`},
		{name: "bad rate limit headers", input: site("access_auth a {\nrate_limit_headers maybe\n}"), wantErr: `access_auth: rate_limit_headers: expected on or off, got "maybe"`},
		{name: "flag with arg", input: site("access_auth a {\nhide_credentials yes\n}"), wantErr: `access_auth: hide_credentials: takes no argument`},
		{name: "unknown sub", input: site("access_auth a {\nfoo\n}"), wantErr: `access_auth: unknown subdirective "foo"`},
		{name: "bad environment", input: site("access_auth a {\nenvironment *\n}"), wantErr: `access_auth: environment: invalid name "*"`},
		{name: "environment with a space", input: site("access_auth a {\nenvironment \"pre release\"\n}"), wantErr: `access_auth: environment: invalid name "pre release"`},
		{name: "admin without token", input: site("access_auth_admin {\nconsole on\n}"), wantErr: "access_auth_admin: token: required"},
		{name: "admin empty token", input: site("access_auth_admin {\ntoken\n}"), wantErr: "access_auth_admin: token: expected one or more tokens"},
		{name: "admin bad console", input: site("access_auth_admin {\ntoken " + testAdminToken + "\nconsole maybe\n}"), wantErr: `access_auth_admin: console: expected on or off, got "maybe"`},
		{name: "admin short token", input: site("access_auth_admin {\ntoken " + testAdminToken[1:] + "\n}"), wantErr: "access_auth_admin: token 1: 31 characters is too short"},
		{name: "admin token advice", input: site("access_auth_admin {\ntoken a\n}"), wantErr: "make one with `openssl rand -hex 32` and give it as token {env.ACCESS_AUTH_ADMIN_TOKEN}"},
		{name: "redis without master key", input: global("access_auth {\nstore redis redis://a:6379\n}"), wantErr: "access_auth: master_key: required with store redis"},
		{name: "redis gen hint", input: global("access_auth {\nstore redis redis://a:6379\n}"), wantErr: "caddy access-auth gen-master-key"},
		{name: "bad master key", input: global("access_auth {\nmaster_key c2hvcnQ=\n}"), wantErr: "access_auth: master_key: key 1: expected 32 bytes in base64"},
		{name: "bad store type", input: global("access_auth {\nstore etcd\n}"), wantErr: `access_auth: store: unknown type "etcd", expected file or redis`},
		{name: "bad redis url", input: global("access_auth {\nstore redis http://a\nmaster_key " + testMasterKey + "\n}"), wantErr: "access_auth: store redis: invalid URL"},
		{name: "redis url password hidden", input: global("access_auth {\nstore redis http://u:hunter2@a\nmaster_key " + testMasterKey + "\n}"), wantErr: "xxxxx"},
		{name: "redis urls and block", input: global("access_auth {\nstore redis redis://a {\ndb 1\n}\n}"), wantErr: "access_auth: store redis: give URLs or a block with addrs, not both"},
		{name: "redis empty", input: global("access_auth {\nstore redis\n}"), wantErr: "access_auth: store redis: expected one or more redis:// URLs"},
		{name: "redis bad db", input: global("access_auth {\nstore redis {\naddrs a:1\ndb -1\n}\n}"), wantErr: `access_auth: store redis: db: expected a database number >= 0, got "-1"`},
		{name: "redis unknown", input: global("access_auth {\nstore redis {\nhosts a:1\n}\n}"), wantErr: `access_auth: store redis: unknown subdirective "hosts"`},
		{name: "file two paths", input: global("access_auth {\nstore file a b\n}"), wantErr: `access_auth: store file: unexpected argument "b"`},
		{name: "store twice", input: global("access_auth {\nstore file\nstore file\n}"), wantErr: "access_auth: store: given twice"},
		{name: "cache bad entries", input: global("access_auth {\ncache {\nmax_entries -3\n}\n}"), wantErr: `access_auth: cache: max_entries: expected a positive number, got "-3"`},
		{name: "cache bad ttl", input: global("access_auth {\ncache {\nttl soon\n}\n}"), wantErr: `access_auth: cache: ttl: invalid duration "soon"`},
		{name: "cache unknown", input: global("access_auth {\ncache {\nsize 3\n}\n}"), wantErr: `access_auth: cache: unknown subdirective "size"`},
		{name: "max_stale missing", input: global("access_auth {\nmax_stale\n}"), wantErr: "access_auth: max_stale: expected one argument"},
		{name: "local_nonces missing", input: global("access_auth {\nlocal_nonces\n}"), wantErr: "access_auth: local_nonces: expected one argument"},
		{name: "audit_retention not a duration", input: global("access_auth {\naudit_retention forever\n}"), wantErr: "access_auth: audit_retention: invalid duration"},
		{name: "local_nonces not a number", input: global("access_auth {\nlocal_nonces many\n}"), wantErr: `access_auth: local_nonces: expected a positive number, got "many"`},
		{name: "local_nonces zero", input: global("access_auth {\nlocal_nonces 0\n}"), wantErr: `access_auth: local_nonces: expected a positive number, got "0"`},
		{name: "body_buffer argument", input: global("access_auth {\nbody_buffer 1GiB\n}"), wantErr: `access_auth: body_buffer: unexpected argument "1GiB", expected a block`},
		{name: "body_buffer bad size", input: global("access_auth {\nbody_buffer {\nmax_bytes lots\n}\n}"), wantErr: `access_auth: body_buffer: max_bytes: invalid size "lots", expected a size such as 1GiB`},
		{name: "body_buffer zero bodies", input: global("access_auth {\nbody_buffer {\nmax_bodies 0\n}\n}"), wantErr: `access_auth: body_buffer: max_bodies: expected a positive number, got "0"`},
		{name: "body_buffer unknown", input: global("access_auth {\nbody_buffer {\nmax_spools 3\n}\n}"), wantErr: `access_auth: body_buffer: unknown subdirective "max_spools"`},
		{name: "global unknown", input: global("access_auth {\nprefix x\n}"), wantErr: `access_auth: unknown subdirective "prefix"`},
		{name: "global arg", input: global("access_auth on"), wantErr: `access_auth: unexpected argument "on"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := adapt(t, tt.input)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("adapted without error, want %q:\n%s", tt.wantErr, out)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %q, want it to contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error %q reveals a password", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("adapted JSON lacks %s:\n%s", w, out)
				}
			}
		})
	}
}

// TestDirectiveOrder checks that access_auth runs right after basic_auth,
// before every handler that could answer, and access_auth_admin after it.
func TestDirectiveOrder(t *testing.T) {
	out, err := adapt(t, `:8080 {
		reverse_proxy localhost:9
		file_server /files/*
		respond /x ok
		request_header X-A b
		access_auth_admin {
			token `+testAdminToken+`
		}
		access_auth orders
		basic_auth /b {
			u $2a$14$Zkx19XLiW6VYouLHR5NmfOFU0z2GTNmpkT/5qqR7hx4IjWJPDhjvG
		}
	}`)
	if err != nil {
		t.Fatal(err)
	}
	order := []string{`"authentication"`, `"access_auth"`, `"access_auth_admin"`, `"headers"`, `"static_response"`, `"reverse_proxy"`, `"file_server"`}
	last := -1
	for _, handler := range order {
		i := strings.Index(out, `"handler":`+handler)
		if i < 0 {
			t.Fatalf("handler %s missing:\n%s", handler, out)
		}
		if i < last {
			t.Errorf("handler %s runs too early:\n%s", handler, out)
		}
		last = i
	}
}

// TestCaddyfileErrorsNameTheLine checks that an error names the line of
// the offending token, not the end of its block.
func TestCaddyfileErrorsNameTheLine(t *testing.T) {
	site := func(block string) string {
		return ":8080 {\n\taccess_auth orders {\n" + block + "\n\t}\n\trespond ok\n}\n"
	}
	global := func(block string) string {
		return "{\n\taccess_auth {\n" + block + "\n\t}\n}\n:8080 {\n\trespond ok\n}\n"
	}
	tests := []struct {
		name    string
		input   string
		wantErr string
		line    int
	}{
		{"unknown scheme", site("\t\tmax_skew 5m\n\t\tschemes jdcloud2 hmac\n\t\tmax_body 1MiB"), `schemes: unknown scheme "hmac"`, 4},
		{"unknown replay mode", site("\t\treplay_protection always\n\t\tmax_skew 5m"), `replay_protection: unknown mode "always"`, 3},
		{"max_skew too wide", site("\t\tmax_skew 30d\n\t\thide_credentials"), "max_skew: at most 7d", 3},
		{"bad group in the block", site("\t\tgroup Orders\n\t\thide_credentials"), `group: invalid name "Orders"`, 3},
		{"bad environment", site("\t\thide_credentials\n\t\tenvironment *\n\t\tmax_skew 5m"), `environment: invalid name "*"`, 4},
		{"bad master key", global("\t\tmaster_key c2hvcnQ=\n\t\tmax_stale 1m"), "master_key: key 1: expected 32 bytes in base64", 3},
		{"second master key bad", global("\t\tmax_stale 1m\n\t\tmaster_key " + testMasterKey + " c2hvcnQ=\n\t\tlocal_nonces 10"), "master_key: key 2:", 4},
		{"redis url", global("\t\tstore redis http://a\n\t\tmaster_key " + testMasterKey), "store redis: invalid URL", 3},
		{"unknown subdirective", site("\t\thide_credentials\n\t\tfoo"), `unknown subdirective "foo"`, 4},
		{"short admin token", ":8080 {\n\taccess_auth_admin {\n\t\ttoken " + testAdminToken + "\n\t\ttoken short\n\t\tconsole off\n\t}\n}\n",
			"token 2: 5 characters is too short", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := adapt(t, tt.input)
			if err == nil {
				t.Fatalf("adapted without error, want %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q, want it to contain %q", err, tt.wantErr)
			}
			if want := fmt.Sprintf("Caddyfile:%d", tt.line); !strings.Contains(err.Error(), want+",") && !strings.HasSuffix(err.Error(), want) {
				t.Fatalf("error %q, want it to name line %d:\n%s", err, tt.line, tt.input)
			}
		})
	}
}
