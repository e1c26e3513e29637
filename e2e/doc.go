// Package e2e tests the plugin as it is deployed: real Caddy processes built
// from ./cmd/caddy on one real Redis (standalone, Sentinel or Cluster)
// started by the tests on free loopback ports. It holds only tests (the
// benchmarks of docs/operations.md are in package bench):
//
//   - propagation of admin writes from one node to another (p50/p99),
//   - a Redis outage and recovery under a running node,
//   - Sentinel failover and a three-master Cluster,
//   - replay protection across nodes, restarts and a Redis outage, and against
//     replays re-encoded on the wire,
//   - moving from the embedded store to Redis with export and import,
//   - declarative apply through the CLI (docs/apply.md),
//   - the Redis connections across config reloads,
//   - request bodies: tampered small bodies, refusals that do not wait for
//     a body, the node's body buffer (these need no Redis).
package e2e
