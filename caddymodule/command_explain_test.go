package caddymodule

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/accessauth/caddy-access-auth/admin"
)

func TestParseRawRequest(t *testing.T) {
	tests := []struct {
		name     string
		raw      string
		wantURL  string
		wantHost string
		wantBody string
		wantErr  string
	}{
		{name: "CRLF", raw: "GET /v1/a%3Ab?x=1&a=2 HTTP/1.1\r\nHost: api.example.com\r\nX-Jdcloud-Nonce: n\r\n\r\n",
			wantURL: "/v1/a%3Ab?x=1&a=2", wantHost: "api.example.com"},
		{name: "LF only, as written by hand", raw: "POST /v1 HTTP/1.1\nHost: h\nContent-Length: 3\n\nabc",
			wantURL: "/v1", wantHost: "h", wantBody: "abc"},
		{name: "chunked", raw: "POST /v1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
			wantURL: "/v1", wantHost: "h", wantBody: "abc"},
		{name: "absolute form", raw: "GET http://h.example/v1 HTTP/1.1\r\n\r\n", wantURL: "http://h.example/v1", wantHost: "h.example"},
		{name: "headers not ended", raw: "GET / HTTP/1.1\r\nHost: h\r\n", wantErr: "ends before its headers do"},
		{name: "body shorter than its length", raw: "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\nabc", wantErr: "body"},
		{name: "not HTTP", raw: "hello\r\n\r\n", wantErr: "not an HTTP/1.1 request"},
		{name: "too large", raw: "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", maxRawRequest) + "\r\n\r\n", wantErr: "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := parseRawRequest([]byte(tt.raw))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if in.URL != tt.wantURL || strings.Join(in.Headers["Host"], ",") != tt.wantHost || in.BodyBase64 != base64.StdEncoding.EncodeToString([]byte(tt.wantBody)) {
				t.Fatalf("got %+v, want URL %q, host %q, body %q", in, tt.wantURL, tt.wantHost, tt.wantBody)
			}
		})
	}
}

// FuzzParseRawRequest feeds arbitrary bytes to the raw request parser: it
// must fail or give a request with a method and URL, and writing that
// request out again must parse to the same request.
func FuzzParseRawRequest(f *testing.F) {
	for _, seed := range []string{
		"GET /v1/orders?page=1 HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: JDCLOUD2-HMAC-SHA256 Credential=K/20260101/r/s/jdcloud2_request\r\n\r\n",
		"POST /v1 HTTP/1.1\nHost: h\nContent-Length: 3\n\nabc",
		"POST /v1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		"GET http://h/%zz HTTP/1.0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n",
		"\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		in, err := parseRawRequest(raw)
		if err != nil {
			return
		}
		if in.Method == "" || in.URL == "" {
			t.Fatalf("parsed %q to %+v: no method or URL", raw, in)
		}
		again, err := parseRawRequest(rawOf(in))
		if err != nil {
			t.Fatalf("%q parsed to %+v, written out as %q, which fails: %v", raw, in, rawOf(in), err)
		}
		// The framing headers may change (rawOf writes a Content-Length).
		for _, parsed := range []*admin.ExplainInput{&in, &again} {
			delete(parsed.Headers, "Content-Length")
			delete(parsed.Headers, "Transfer-Encoding")
		}
		if fmt.Sprint(again) != fmt.Sprint(in) {
			t.Fatalf("%q parsed to %+v, written out and parsed again to %+v", raw, in, again)
		}
	})
}

// rawOf writes in as a raw HTTP/1.1 request with a Content-Length body.
func rawOf(in admin.ExplainInput) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", in.Method, in.URL)
	names := make([]string, 0, len(in.Headers))
	for name := range in.Headers {
		if name != "Content-Length" && name != "Transfer-Encoding" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		for _, v := range in.Headers[name] {
			fmt.Fprintf(&b, "%s: %s\r\n", name, v)
		}
	}
	body, _ := base64.StdEncoding.DecodeString(in.BodyBase64)
	if len(body) > 0 {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

func TestParseSignedForm(t *testing.T) {
	verbose := "* canonical request (jdcloud2):\nGET\n/v1\n\nhost:h\n\nhost\nabc\n* string to sign:\nJDCLOUD2-HMAC-SHA256\n20260101T000000Z\n"
	tests := []struct {
		name, text, wantCanonical, wantSTS string
	}{
		{"curl --verbose", verbose, "GET\n/v1\n\nhost:h\n\nhost\nabc", "JDCLOUD2-HMAC-SHA256\n20260101T000000Z"},
		{"curl --verbose of a refused request", verbose + "Error: the server answered 401 Unauthorized\n",
			"GET\n/v1\n\nhost:h\n\nhost\nabc", "JDCLOUD2-HMAC-SHA256\n20260101T000000Z"},
		{"CRLF", strings.ReplaceAll(verbose, "\n", "\r\n"), "GET\n/v1\n\nhost:h\n\nhost\nabc", "JDCLOUD2-HMAC-SHA256\n20260101T000000Z"},
		{"a bare canonical request", "GET\n/v1\n\nhost:h\n", "GET\n/v1\n\nhost:h", ""},
		{"no string to sign", "* canonical request (sigv4):\nGET\n/\n", "GET\n/", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseSignedForm(tt.text)
			if got.CanonicalRequest != tt.wantCanonical || got.StringToSign != tt.wantSTS {
				t.Fatalf("got %q / %q, want %q / %q", got.CanonicalRequest, got.StringToSign, tt.wantCanonical, tt.wantSTS)
			}
		})
	}
}

func TestSideBySide(t *testing.T) {
	tests := []struct {
		name, left, right string
		wantDiffer        []string
	}{
		{"one line", "GET\n/v1/order\nq", "GET\n/v1/orders\nq", []string{`line 2 of the canonical request differs:
  gateway: "/v1/order"
  yours:   "/v1/orders"`}},
		{"a line more on the right", "GET\n/", "GET\n/\nx", []string{`line 3 of the canonical request differs:
  gateway: ""
  yours:   "x"`}},
		{"the same", "GET\n/", "GET\n/", []string{"the canonical requests are the same"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w strings.Builder
			sideBySide(&w, "canonical request", "gateway", tt.left, "yours", tt.right)
			for _, want := range tt.wantDiffer {
				if !strings.Contains(w.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, w.String())
				}
			}
			if marked := strings.Count(w.String(), "\n!"); marked != len(differingLines(tt.left, tt.right)) {
				t.Errorf("%d lines marked !, want %d:\n%s", marked, len(differingLines(tt.left, tt.right)), w.String())
			}
		})
	}
}
