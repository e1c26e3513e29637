package signature

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http/httpguts"
)

// sharedVectors is where the project keeps the vectors beside a clone
// (CI copies shared/ next to the repository); testdata/vectors holds a
// committed copy so the tests never depend on it.
const sharedVectors = "../../shared/vectors"

func readVectors(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "vectors", name))
	if err != nil {
		t.Fatal(err)
	}
	if shared, err := os.ReadFile(filepath.Join(sharedVectors, name)); err == nil && !bytes.Equal(shared, data) {
		t.Errorf("testdata/vectors/%s differs from %s: copy the new version", name, sharedVectors)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}

type jdcloud2Vector struct {
	Name             string            `json:"name"`
	APIKey           string            `json:"api_key"`
	APISecret        string            `json:"api_secret"`
	Region           string            `json:"region"`
	Service          string            `json:"service"`
	Method           string            `json:"method"`
	Host             string            `json:"host"`
	Path             string            `json:"path"`
	RawQuery         string            `json:"raw_query"`
	Headers          map[string]string `json:"headers"`
	SignedHeaders    string            `json:"signed_headers"`
	Body             string            `json:"body"`
	CanonicalRequest string            `json:"canonical_request"`
	CanonicalSHA256  string            `json:"canonical_request_sha256"`
	Signature        string            `json:"signature"`
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestJDCloud2Vectors(t *testing.T) {
	var file struct {
		Vectors []jdcloud2Vector `json:"vectors"`
	}
	readVectors(t, "jdcloud2.json", &file)
	if len(file.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range file.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			h := make(http.Header)
			for name, value := range v.Headers {
				h.Add(name, value) // as a server receives them: canonical keys
			}
			h.Set("Authorization", "JDCLOUD2-HMAC-SHA256 Credential="+v.APIKey+"/"+v.Headers["x-jdcloud-date"][:8]+"/"+
				v.Region+"/"+v.Service+"/jdcloud2_request, SignedHeaders="+v.SignedHeaders+", Signature="+v.Signature)
			var c Credentials
			if err := Parse(h, AllSchemes, &c); err != nil {
				t.Fatal(err)
			}
			wantDate, _ := parseCompactTime(v.Headers["x-jdcloud-date"])
			if !c.Date.Equal(wantDate) || c.APIKey != v.APIKey || c.Region != v.Region || c.Service != v.Service || c.Scheme != JDCloud2 {
				t.Fatalf("parsed %+v", c)
			}
			r := &Request{Method: v.Method, Host: v.Host, Path: v.Path, RawQuery: v.RawQuery, Header: h}
			if v.CanonicalRequest != "" {
				sc := getScratch()
				b, _ := implOf(JDCloud2).(*jdcloud).appendCanonicalRequest(sc.buf[:0], r, &c, sha256Hex(v.Body), false, sc)
				if string(b) != v.CanonicalRequest {
					t.Errorf("canonical request\n got %q\nwant %q", b, v.CanonicalRequest)
				}
				if got := sha256Hex(string(b)); v.CanonicalSHA256 != "" && got != v.CanonicalSHA256 {
					t.Errorf("canonical request sha256 %s, want %s", got, v.CanonicalSHA256)
				}
			}
			if !Verify(r, &c, NewSecret(v.APISecret), sha256Hex(v.Body)) {
				t.Error("vector not verified")
			}
			if !documentedFormMatches(r, &c, v.APISecret, sha256Hex(v.Body)) {
				t.Error("vector accepted only by the retry with the path and query as sent")
			}
			if Verify(r, &c, NewSecret(v.APISecret+"x"), sha256Hex(v.Body)) {
				t.Error("verified with a wrong secret")
			}
		})
	}
}

// nodeCase is one case of JD Cloud's Node.js signer test list (JDCLOUD3).
type nodeCase struct {
	Category      string `json:"分类"` // set on the first case of each category only
	Number        string `json:"序号"`
	Name          string `json:"测试用例"`
	Method        string `json:"method"`
	Region        string `json:"regionId"`
	Service       string `json:"serviceName"`
	Host          string `json:"host"`
	Headers       string `json:"默认header"` // JSON object; a value may be an array
	Path          string `json:"path"`
	Query         string `json:"query"` // 空 = empty
	Body          string `json:"Body"`
	Authorization string `json:"Authorization"`
}

// The categories of the Node.js test list, which builds each category's URL its own way.
const (
	catPath        = "路径"
	catQuery       = "查询参数"
	catHeader      = "header"
	catIntegration = "综合场景"
	empty          = "空"
)

func readNodeCases(t *testing.T) []nodeCase {
	var file struct {
		Cases []nodeCase `json:"测试用例"`
	}
	readVectors(t, "jdcloud3-nodejs-signer-cases.json", &file)
	category := ""
	for i := range file.Cases {
		if file.Cases[i].Category != "" {
			category = file.Cases[i].Category
		}
		file.Cases[i].Category = category
	}
	return file.Cases
}

// nodeQueryMapCase is case 16's query: the list holds the Java code that
// builds it, and the Node.js test substitutes querystring.stringify of
// the same map (output of Node's querystring module).
const nodeQueryMapCase = "?nullValue=&=nullKey&specialValue=%26%26%3D%3D%26%3D%3D%26%26%3D%26%3D&%26%26%3D%3D%26%3D%3D%26%26%3D%26%3D=specialKey"

// requestTarget is the request target a client sends for a case: the URL
// as the Node.js test builds it (escaping '#', '?' and '\' with escape()),
// auto-escaped as Node's url.parse does, with non-ASCII bytes
// percent-encoded as UTF-8 (Node's http refuses to send them raw).
func (c nodeCase) requestTarget() string {
	path, query := c.Path, c.Query
	if query == empty {
		query = ""
	}
	switch c.Category {
	case catPath:
		path, query = jsEscape(path, "#?\\"), ""
	case catQuery:
		if strings.Contains(strings.ToLower(query), "maps") {
			query = nodeQueryMapCase
		}
		query = jsEscape(query, "#\\")
	case catHeader:
		query = ""
	}
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return jsEscape(path+query, "{}|\\^`'\"<> \r\n\t\x80")
}

// jsEscape percent-encodes the bytes of s listed in chars; "\x80" stands
// for every non-ASCII byte.
func jsEscape(s, chars string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if strings.IndexByte(chars, c) >= 0 || c >= 0x80 && strings.Contains(chars, "\x80") {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

// headerLines are the header lines a client sends for a case: an array
// value is sent as one line per element.
func (c nodeCase) headerLines(t *testing.T) [][2]string {
	var headers map[string]any
	if err := json.Unmarshal([]byte(c.Headers), &headers); err != nil {
		t.Fatalf("case %s headers: %v", c.Number, err)
	}
	var lines [][2]string
	for name, v := range headers {
		switch v := v.(type) {
		case string:
			lines = append(lines, [2]string{name, v})
		case []any:
			for _, e := range v {
				lines = append(lines, [2]string{name, e.(string)})
			}
		}
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i][0] < lines[j][0] })
	return lines
}

// nodeUnsendable are the cases whose request cannot reach a gateway as
// signed, and why. For each the test asserts that it indeed cannot, and that
// the canonical form is still right when the request is handed over
// in-process.
var nodeUnsendable = map[string]string{
	"1":  "the path holds '%' before '^', sent as '$%%5E': not valid percent-encoding (RFC 3986 §2.1), so net/http answers 400 before any handler",
	"6":  "the path holds '%' before '^', sent as '$%%5E': not valid percent-encoding (RFC 3986 §2.1), so net/http answers 400 before any handler",
	"10": "the path /v1/%2/%2f/%2b%f holds '%' without two hex digits: not a valid request target, net/http answers 400",
	"24": "the header value holds CR and LF: not a valid field value (RFC 9110 §5.5); Node's and Go's HTTP clients refuse to send it",
}

func TestJDCloud3NodeSignerCases(t *testing.T) {
	cases := readNodeCases(t)
	if len(cases) != 31 {
		t.Fatalf("%d cases, want 31", len(cases))
	}
	for _, nc := range cases {
		t.Run(nc.Number, func(t *testing.T) {
			method := strings.ToUpper(nc.Method) // Node's http sends the method upper-case
			host := strings.TrimPrefix(nc.Host, "http://")
			target := nc.requestTarget()
			lines := nc.headerLines(t)

			var wire strings.Builder
			fmt.Fprintf(&wire, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, target, host)
			for _, l := range lines {
				if strings.EqualFold(l[0], "host") {
					continue
				}
				fmt.Fprintf(&wire, "%s: %s\r\n", l[0], l[1])
			}
			fmt.Fprintf(&wire, "Authorization: %s\r\nContent-Length: %d\r\n\r\n%s", nc.Authorization, len(nc.Body), nc.Body)

			if why, ok := nodeUnsendable[nc.Number]; ok {
				t.Log("cannot be sent:", why)
				assertUnsendable(t, nc, wire.String(), lines)
				// In-process, with the values the signer saw, it verifies.
				h := make(http.Header)
				for _, l := range lines {
					h.Add(l[0], l[1])
				}
				h.Set("Authorization", nc.Authorization)
				path, query, _ := strings.Cut(target, "?")
				verifyNodeCase(t, nc, &Request{Method: method, Host: host, Path: path, RawQuery: query, Header: h})
				return
			}
			req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(wire.String())))
			if err != nil {
				t.Fatalf("request %q not readable: %v", target, err)
			}
			verifyNodeCase(t, nc, &Request{Method: req.Method, Host: req.Host, Path: req.URL.EscapedPath(), RawQuery: req.URL.RawQuery, Header: req.Header})
		})
	}
}

func assertUnsendable(t *testing.T, nc nodeCase, wire string, lines [][2]string) {
	t.Helper()
	for _, l := range lines {
		if !httpguts.ValidHeaderFieldValue(l[1]) {
			return // a client refuses to send the header
		}
	}
	if _, err := http.ReadRequest(bufio.NewReader(strings.NewReader(wire))); err == nil {
		t.Fatalf("case %s was expected to be unsendable but net/http reads it", nc.Number)
	}
}

func verifyNodeCase(t *testing.T, nc nodeCase, r *Request) {
	t.Helper()
	var c Credentials
	if err := Parse(r.Header, AllSchemes, &c); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if c.Scheme != JDCloud3 || c.APIKey != "ak" || c.Region != nc.Region || c.Service != nc.Service ||
		!c.Date.Equal(time.Date(2019, 9, 17, 6, 47, 8, 0, time.UTC)) {
		t.Fatalf("parsed %+v", c)
	}
	payloadHash := sha256Hex(nc.Body)
	if c.PayloadHash != "" {
		payloadHash = c.PayloadHash
	}
	if !Verify(r, &c, NewSecret("sk"), payloadHash) {
		t.Fatalf("signature of case %s (%s) not accepted; target %s?%s", nc.Number, nc.Name, r.Path, r.RawQuery)
	}
	// The Node.js signer writes the documented canonical form: no retry needed.
	if !documentedFormMatches(r, &c, "sk", payloadHash) {
		t.Error("accepted only by the retry with the path and query as sent")
	}
	if Verify(r, &c, NewSecret("sk2"), payloadHash) {
		t.Error("accepted with another secret")
	}
}

// documentedFormMatches verifies without the retry of the raw form.
func documentedFormMatches(r *Request, c *Credentials, secret, payloadHash string) bool {
	j := implOf(c.Scheme).(*jdcloud)
	key := j.auth.signingKey(j.id, NewSecret(secret), c)
	ok, _ := j.matches(r, c, key, payloadHash, false, newScratch())
	return ok
}
