package enforcement

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/cache"
	"github.com/accessauth/caddy-access-auth/internal/pollute"
	"github.com/accessauth/caddy-access-auth/replay"
	"github.com/accessauth/caddy-access-auth/signature"
)

// TestReencodedReplaysAreRefused: a request accepted once and re-sent
// with its nonce, date or signature written another way on the wire is
// refused: as a replay where the signature still covers it, as malformed
// credentials where a header the check reads once comes on two lines.
func TestReencodedReplaysAreRefused(t *testing.T) {
	// split sends a header on two lines, cut at its comma (which the
	// canonical headers of JD Cloud's schemes put back) or in the middle.
	split := func(name string) func(h http.Header) {
		return func(h http.Header) {
			v := h.Get(name)
			if first, second, ok := strings.Cut(v, ","); ok {
				h[name] = []string{first, second}
			} else {
				h[name] = []string{v[:len(v)/2], v[len(v)/2:]}
			}
		}
	}
	set := func(name, value string) func(h http.Header) {
		return func(h http.Header) { h.Set(name, value) }
	}
	tests := []struct {
		name   string
		scheme signature.Scheme
		nonce  string
		replay func(h http.Header)
		want   Reason
	}{
		{"jdcloud2 nonce with inner spaces doubled", signature.JDCloud2, "abc def", set("X-Jdcloud-Nonce", "abc  def"), ReplayedNonce},
		{"jdcloud2 nonce padded", signature.JDCloud2, "abc def", set("X-Jdcloud-Nonce", " abc def\t"), ReplayedNonce},
		{"jdcloud3 nonce with inner spaces doubled", signature.JDCloud3, "abc def", set("X-Jdcloud-Nonce", "abc  def"), SignatureMismatch},
		{"jdcloud2 nonce split over two lines", signature.JDCloud2, "A,B", split("X-Jdcloud-Nonce"), MalformedCredentials},
		{"jdcloud3 nonce split over two lines", signature.JDCloud3, "A,B", split("X-Jdcloud-Nonce"), MalformedCredentials},
		{"jdcloud2 date repeated", signature.JDCloud2, "n", func(h http.Header) { h.Add("X-Jdcloud-Date", h.Get("X-Jdcloud-Date")) }, MalformedCredentials},
		{"jdcloud2 Authorization repeated", signature.JDCloud2, "n", func(h http.Header) { h.Add("Authorization", h.Get("Authorization")) }, MalformedCredentials},
		{"sigv4 signature in upper case", signature.SigV4, "", func(h http.Header) {
			auth := h.Get("Authorization")
			i := strings.Index(auth, "Signature=") + len("Signature=")
			h.Set("Authorization", auth[:i]+strings.ToUpper(auth[i:]))
		}, MalformedCredentials},
		{"sigv4 date split over two lines", signature.SigV4, "", split("X-Amz-Date"), MalformedCredentials},
		{"aliyun nonce with inner spaces doubled", signature.Aliyun, "abc def", set("X-Ca-Nonce", "abc  def"), SignatureMismatch},
		{"aliyun nonce split over two lines", signature.Aliyun, "A,B", split("X-Ca-Nonce"), MalformedCredentials},
		{"aliyun nonce repeated", signature.Aliyun, "n", func(h http.Header) { h.Add("X-Ca-Nonce", "other") }, MalformedCredentials},
		{"aliyun timestamp repeated", signature.Aliyun, "n", func(h http.Header) { h.Add("X-Ca-Timestamp", h.Get("X-Ca-Timestamp")) }, MalformedCredentials},
	}
	keys := testKeys()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nonces := replay.NewLocalNonces(replay.WithNonceClock(func() time.Time { return testNow }))
			c := newTestChecker(t, keys, func(c *Config) { c.Nonces = nonces })
			var opts []signature.Option
			if tt.nonce != "" {
				opts = append(opts, signature.WithNonce(tt.nonce))
			}
			r := signedRequest(t, http.MethodGet, "http://api.example.com/v1/orders/1", "", "GOOD", secretOf("GOOD"), tt.scheme, opts...)
			if d := check(c, r, "203.0.113.5"); d.Reason != Allowed {
				t.Fatalf("as signed: %s", d.Reason)
			}
			tt.replay(r.Header)
			if d := check(c, r, "203.0.113.5"); d.Reason != tt.want {
				t.Fatalf("replayed with %q: %s, want %s", r.Header, d.Reason, tt.want)
			}
		})
	}
}

// BenchmarkCheckLocalReplayPolluted is the whole check with replay
// protection in a half-full LocalNonces, caches polluted before each
// request as in a busy server: "prefetched" is the check as built (it
// prepares the nonce, loading its bucket, while it verifies the
// signature), "unprefetched" the same table behind a wrapper whose Prepare
// only names the nonce, so that the check waits for the bucket when it
// records the nonce. The two alternate request by request; each is timed
// alone (ns/check).
func BenchmarkCheckLocalReplayPolluted(b *testing.B) {
	keys, err := cache.New(cache.Config{MaxEntries: 1000}, testCredentials())
	if err != nil {
		b.Fatal(err)
	}
	defer keys.Close()
	// Half full of live nonces kept half as long as the check keeps a nonce
	// (two max_skew windows from its request's date, a date in whole
	// seconds): they expire before any nonce the benchmark records, so a
	// full bucket drops one of them. Kept longer, the benchmark's own
	// nonces would be dropped first, and the table would rightly refuse the
	// next ones of the same second as date_out_of_range.
	nonces := replay.NewLocalNonces()
	for i := range replay.DefaultMaxNonces / 2 {
		nonces.Seen(context.Background(), "GOOD", "fill-"+strconv.Itoa(i), time.Now(), DefaultMaxSkew)
	}
	checkers := [2]*Checker{
		newTestChecker(b, keys, func(c *Config) { c.Now, c.Nonces = nil, nonces }),
		newTestChecker(b, keys, func(c *Config) { c.Now, c.Nonces = nil, unprefetched{nonces} }),
	}
	ctx := context.Background()
	for keys.Stats().Hits == 0 { // ristretto stores asynchronously
		keys.Get(ctx, "GOOD")
		time.Sleep(time.Millisecond)
	}
	remote := netip.MustParseAddr("203.0.113.5")
	polluteCaches := pollute.NewCachePolluter()
	var spent [2]time.Duration
	for i := 0; b.Loop(); i++ {
		r := signedRequest(b, http.MethodGet, "http://api.example.com/v1/orders/1", "", "GOOD", secretOf("GOOD"), signature.JDCloud2,
			signature.WithTime(time.Now()), signature.WithNonce("n-"+strconv.Itoa(i)))
		orig := originalOf(r)
		polluteCaches()
		start := time.Now()
		d := checkers[i%2].Check(ctx, r, orig, remote)
		spent[i%2] += time.Since(start)
		if d.Reason != Allowed {
			b.Fatal(d.Reason)
		}
	}
	half := float64(b.N) / 2
	b.ReportMetric(float64(spent[0])/half, "prefetched-ns/check")
	b.ReportMetric(float64(spent[1])/half, "unprefetched-ns/check")
}

// unprefetched is the node's table with a Prepare that only names the
// nonce: its Record then locates the nonce and waits for its bucket.
type unprefetched struct{ *replay.LocalNonces }

func (unprefetched) Prepare(apiKey, nonce string) replay.Ticket {
	return replay.Ticket{APIKey: apiKey, Nonce: nonce}
}

// clockedNonces records the clock readings it was handed.
type clockedNonces struct {
	*replay.LocalNonces
	readings []time.Time
}

func (n *clockedNonces) Record(ctx context.Context, t replay.Ticket, date, now time.Time, ttl time.Duration) replay.Verdict {
	n.readings = append(n.readings, now)
	return n.LocalNonces.Record(ctx, t, date, now, ttl)
}

// TestNoncesTakeTheChecksClock: on the wall clock, the nonce store gets
// the caller's clock reading, so a request reads the clock once; a replay
// is still refused.
func TestNoncesTakeTheChecksClock(t *testing.T) {
	nonces := &clockedNonces{LocalNonces: replay.NewLocalNonces()}
	c, err := NewChecker(Config{Group: "orders", Nonces: nonces, TempDir: t.TempDir()}, testKeys())
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	r := signedRequest(t, http.MethodGet, bodyURL, "", "GOOD", secretOf("GOOD"), signature.JDCloud2, signature.WithTime(at))
	if d := c.CheckAt(context.Background(), r, originalOf(r), netip.MustParseAddr("203.0.113.5"), at); d.Reason != Allowed {
		t.Fatalf("first: %s", d.Reason)
	}
	if d := c.CheckAt(context.Background(), r, originalOf(r), netip.MustParseAddr("203.0.113.5"), at); d.Reason != ReplayedNonce {
		t.Fatalf("replay: %s", d.Reason)
	}
	if len(nonces.readings) != 2 || !nonces.readings[0].Equal(at) {
		t.Fatalf("Record got %v, want the caller's reading %v twice", nonces.readings, at)
	}
}

// TestFullNonceTableNarrowsTheDateWindow: once the node's table had to drop
// a nonce, the replay of its request is refused, and so is every request
// signed as long ago or longer (date_out_of_range: the table can no longer
// vouch for such dates); requests signed since get through.
func TestFullNonceTableNarrowsTheDateWindow(t *testing.T) {
	nonces := replay.NewLocalNonces(replay.WithMaxNonces(1)) // one bucket of 10 nonces
	c := newTestChecker(t, testKeys(), func(c *Config) { c.Now, c.Nonces = nil, nonces })
	now := time.Now()
	signed := func(age time.Duration, nonce string) *http.Request {
		return signedRequest(t, http.MethodGet, bodyURL, "", "GOOD", secretOf("GOOD"), signature.JDCloud2,
			signature.WithTime(now.Add(-age)), signature.WithNonce(nonce))
	}
	want := func(step string, r *http.Request, reason Reason) {
		t.Helper()
		if d := check(c, r, "203.0.113.5"); d.Reason != reason {
			t.Fatalf("%s: %s, want %s", step, d.Reason, reason)
		}
	}
	oldest := signed(20*time.Second, "n-0")
	want("the oldest request", oldest, Allowed)
	for i := 1; i < 10; i++ {
		want("request "+strconv.Itoa(i), signed(time.Duration(20-i)*time.Second, "n-"+strconv.Itoa(i)), Allowed)
	}
	want("a request that fills the table", signed(0, "n-new"), Allowed)
	if nonces.Displaced() != 1 {
		t.Fatalf("%d nonces displaced, want 1", nonces.Displaced())
	}
	want("the replay of the displaced request", oldest, DateOutOfRange)
	want("another request as old", signed(20*time.Second, "n-other"), DateOutOfRange)
	want("an older one", signed(time.Minute, "n-older"), DateOutOfRange)
	want("a replay of a request still held", signed(15*time.Second, "n-5"), ReplayedNonce)
	want("a request signed since", signed(15*time.Second, "n-since"), Allowed)
}
