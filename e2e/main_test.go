package e2e

import (
	"testing"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
)

func TestMain(m *testing.M) { gatewaytest.Main(m) }

// ordersSite is the site every node serves: group orders, and the key's
// ID in the answer.
const ordersSite = `	access_auth orders
	respond "ok {http.auth.user.id}"`
