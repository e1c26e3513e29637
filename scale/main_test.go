// Package scale is the scale-and-faults campaign of docs/operations.md
// ("Scale and faults"): a Redis Cluster of three masters and three
// replicas, many keys imported in bulk, several Caddy nodes under signed
// Zipf load, faults injected while it runs, and a table of the figures
// beside their targets. `make scale` runs it at size; `make test` runs a
// small campaign (campaign_test.go) so CI guards it.
package scale

import (
	"testing"

	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
)

func TestMain(m *testing.M) { gatewaytest.Main(m) }
