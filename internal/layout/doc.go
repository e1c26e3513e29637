// Package layout holds no code: its test checks the arrows between the
// module's packages (docs/architecture.md), so that Caddy stays at the edge.
package layout
