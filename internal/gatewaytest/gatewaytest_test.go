package gatewaytest

import (
	"net/http"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

// TestNode starts a node on the embedded store and goes through the
// harness: a key authorized for the route's group passes, an unsigned
// request is refused with the JSON error body, the cache counts the
// lookups, a reload changes the answer on the same ports, and the process
// can be measured and stopped.
func TestNode(t *testing.T) {
	n := Start(t, "self", "", "\taccess_auth orders\n\trespond \"one {http.auth.user.id}\"")
	n.WaitGroup("orders")
	c := n.AuthorizedKey("self", "orders")
	if got := n.Call(c); got.Status != http.StatusOK || got.Body != "one "+c.ID {
		t.Fatalf("signed call: %s", got)
	}
	req, err := http.NewRequest(http.MethodGet, n.Site+"/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	WantAnswer(t, "unsigned call", n.Send(req), http.StatusUnauthorized, "missing_credentials")
	n.Warm(c)
	if hits := n.CacheLookups("hit"); hits < 1 {
		t.Errorf("cache hits %v after warming", hits)
	}

	n.Reload("", "\taccess_auth orders\n\trespond \"two\"")
	if got := n.Call(c); got.Status != http.StatusOK || got.Body != "two" {
		t.Fatalf("after reload: %s", got)
	}
	if rss, cpu := n.RSS(), n.CPUTime(); rss < 1<<20 || cpu <= 0 {
		t.Errorf("RSS %d bytes, CPU time %v", rss, cpu)
	}
	n.Stop()
	n.Stop()
	if _, err := SendRequest(n.SignedRequest("/x", c)); err == nil {
		t.Error("a stopped node still answers")
	}
	if !strings.Contains(n.Logs(), "serving initial configuration") {
		t.Errorf("logs hold no start message:\n%s", Tail(n.Logs(), 2000))
	}
}
