package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
	"github.com/accessauth/caddy-access-auth/signature"
)

// TestReplayAfterCleanRestart: a node with local replay protection (the
// default with the embedded store) that stops cleanly (SIGTERM) keeps its
// nonces: after the restart a request it accepted before is a replay,
// while one dated before the restart and first sent after it (as a client
// whose clock lags sends it) passes.
func TestReplayAfterCleanRestart(t *testing.T) {
	n, c, accepted, signedAt := acceptedRequest(t, "clean")
	unsent := n.SignedRequest("/x", c, signature.WithTime(signedAt))

	untilNextSecond(signedAt)
	n.Terminate()
	n.Restart()
	gatewaytest.WantAnswer(t, "replayed after a clean restart", n.Send(accepted), http.StatusUnauthorized, "replayed_nonce")
	gatewaytest.WantAnswer(t, "dated before the restart, sent after it", n.Send(unsent), http.StatusOK, "")
}

// TestReplayAfterCrash: a node killed (SIGKILL) lost what it accepted, so
// after the restart it refuses requests dated before it started as
// date_out_of_range, and serves requests signed since. A clean stop after
// such a start keeps what the node knows; the file it saved vouches for
// one start only, so a crash after that start brings the refusal back.
func TestReplayAfterCrash(t *testing.T) {
	n, c, accepted, signedAt := acceptedRequest(t, "crashed")
	untilNextSecond(signedAt)
	n.Stop()
	n.Restart()
	gatewaytest.WantAnswer(t, "replayed after a crash", n.Send(accepted), http.StatusUnauthorized, "date_out_of_range")
	signedAt = time.Now()
	fresh := n.SignedRequest("/x", c, signature.WithTime(signedAt))
	gatewaytest.WantAnswer(t, "signed after the restart", n.Send(fresh), http.StatusOK, "")

	n.Terminate()
	n.Restart()
	gatewaytest.WantAnswer(t, "replayed after a clean restart", n.Send(fresh), http.StatusUnauthorized, "replayed_nonce")
	gatewaytest.WantAnswer(t, "dated before the crash", n.Send(accepted), http.StatusUnauthorized, "date_out_of_range")

	untilNextSecond(signedAt)
	n.Stop()
	n.Restart()
	gatewaytest.WantAnswer(t, "replayed after a crash that followed a clean start", n.Send(fresh), http.StatusUnauthorized, "date_out_of_range")
	gatewaytest.WantAnswer(t, "a fresh request", n.Call(c), http.StatusOK, "")
}

// acceptedRequest starts a node with the embedded store (so local replay
// protection) and returns it with a key and a request it accepted, signed
// at signedAt.
func acceptedRequest(t *testing.T, name string) (n *gatewaytest.Node, c gatewaytest.Credentials, accepted *http.Request, signedAt time.Time) {
	t.Helper()
	n = gatewaytest.Start(t, name, "", ordersSite)
	c = n.AuthorizedKey(name, "orders")
	signedAt = time.Now()
	accepted = n.SignedRequest("/x", c, signature.WithTime(signedAt))
	gatewaytest.WantAnswer(t, "accepted", n.Send(accepted), http.StatusOK, "")
	return n, c, accepted, signedAt
}

// untilNextSecond waits until the whole second after t: requests' dates
// are whole seconds, so a node that starts then tells t's from its own.
func untilNextSecond(t time.Time) {
	time.Sleep(time.Until(t.Truncate(time.Second).Add(time.Second)))
}

// TestReplayAfterResizingReload: a reload that resizes the node's nonce
// table (local_nonces) keeps the nonces it holds.
func TestReplayAfterResizingReload(t *testing.T) {
	n, c, accepted, _ := acceptedRequest(t, "resized")
	n.Reload("\t\tlocal_nonces 5000", ordersSite)
	gatewaytest.WantAnswer(t, "replayed after the reload", n.Send(accepted), http.StatusUnauthorized, "replayed_nonce")
	gatewaytest.WantAnswer(t, "a fresh request", n.Call(c), http.StatusOK, "")
}
