// Package interop sends requests signed by other vendors' real client libraries
// through a real Caddy binary built with the plugin. It is a separate module so
// that users' builds never pull these libraries.
package interop

import (
	"testing"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
)

func TestMain(m *testing.M) { gatewaytest.Main(m) }
