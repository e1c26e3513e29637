// Package bench measures the figures of docs/operations.md that need more
// than a micro-benchmark: its benchmarks (in the test files, Linux only:
// they read /proc and processes' CPU-time clocks) start real Caddy processes
// and redis-server, drive them with the signed load of bench/loadgen and
// report throughput ratios, added latency, the cost of a cache miss,
// propagation between nodes and memory. Each runs once whatever b.N is: run
// them with -benchtime 1x. `make bench` runs them with the micro-benchmarks
// and prints the table (bench/table).
package bench
