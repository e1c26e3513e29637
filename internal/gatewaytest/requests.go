package gatewaytest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/signature"
)

// ErrorBody is the JSON body of a refused request (SPEC §7).
type ErrorBody struct {
	RequestID string `json:"requestId"`
	Error     struct {
		Code    int    `json:"code"`
		Status  string `json:"status"`
		Message string `json:"message"`
		Reason  string `json:"reason"`
	} `json:"error"`
}

// Answer is a site's answer to a request: the status and, for a refusal,
// the reason of its JSON error body.
type Answer struct {
	Status int
	Reason string
	Body   string
}

func (a Answer) String() string {
	if a.Reason != "" {
		return fmt.Sprintf("%d %s", a.Status, a.Reason)
	}
	return fmt.Sprintf("%d %q", a.Status, Tail(a.Body, 200))
}

// SignedRequest builds a GET of path on the node's site, signed with
// JDCLOUD2 and a fresh nonce unless opts say otherwise.
func (n *Node) SignedRequest(path string, c Credentials, opts ...signature.Option) *http.Request {
	n.t.Helper()
	req, err := http.NewRequest(http.MethodGet, n.Site+path, nil)
	if err != nil {
		n.t.Fatal(err)
	}
	if err := signature.Sign(req, signature.JDCloud2, c.APIKey, c.APISecret, opts...); err != nil {
		n.t.Fatal(err)
	}
	return req
}

// Call sends a freshly signed GET /x to the node's site.
func (n *Node) Call(c Credentials) Answer {
	n.t.Helper()
	return n.Send(n.SignedRequest("/x", c))
}

// Send sends a request to a site and reads the answer, failing the test
// when it gets none.
func (n *Node) Send(req *http.Request) Answer {
	n.t.Helper()
	a, err := SendRequest(req)
	if err != nil {
		n.t.Fatalf("%s %s on %s: %v", req.Method, req.URL, n.Name, err)
	}
	return a
}

// SendRequest sends a request with Client and reads the answer.
func SendRequest(req *http.Request) (Answer, error) {
	resp, err := Client.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return Answer{}, err
	}
	a := Answer{Status: resp.StatusCode, Body: string(raw)}
	if resp.StatusCode != http.StatusOK {
		var e ErrorBody
		if json.Unmarshal(raw, &e) == nil {
			a.Reason = e.Error.Reason
		}
	}
	return a, nil
}

// WantAnswer fails the test unless the answer has the status and reason
// ("" for a pass).
func WantAnswer(t testing.TB, step string, a Answer, status int, reason string) {
	t.Helper()
	if a.Status != status || a.Reason != reason {
		t.Fatalf("%s: got %s, want %d %s", step, a, status, reason)
	}
}

// Eventually polls check every 20ms until it returns nil, failing the test
// with its last error after timeout.
func Eventually(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Metric reads one sample from the node's /metrics: the line of name with
// exactly labels (e.g. `result="hit"`).
func (n *Node) Metric(name, labels string) float64 {
	n.t.Helper()
	status, raw := n.Request(http.MethodGet, "/metrics", nil)
	if status != http.StatusOK {
		n.t.Fatalf("GET /metrics on %s: status %d", n.Name, status)
	}
	prefix := name + "{" + labels + "} "
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				n.t.Fatalf("metric %s: %q: %v", prefix, v, err)
			}
			return f
		}
	}
	n.t.Fatalf("metric %s{%s} not on %s's /metrics", name, labels, n.Name)
	return 0
}

// CacheLookups reads the node's credential cache counter of one result
// (hit, miss, negative_hit, stale, …).
func (n *Node) CacheLookups(result string) float64 {
	n.t.Helper()
	return n.Metric("caddy_access_auth_cache_lookups_total", `result="`+result+`"`)
}

// Warm calls the node with c until a call is answered from its cache (the
// cache admits entries asynchronously, so the first load may not be there
// yet for the next request).
func (n *Node) Warm(c Credentials) {
	n.t.Helper()
	Eventually(n.t, 5*time.Second, "key "+c.ID+" cached at "+n.Name, func() error {
		hits := n.CacheLookups("hit")
		if got := n.Call(c); got.Status != http.StatusOK {
			return fmt.Errorf("answer %s", got)
		}
		if n.CacheLookups("hit") == hits {
			return fmt.Errorf("answered by a load, not the cache")
		}
		return nil
	})
}
