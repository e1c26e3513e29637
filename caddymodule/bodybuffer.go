package caddymodule

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/accessauth/caddy-access-auth/enforcement"
)

// BodyBufferConfig bounds the request bodies this node reads before it can
// check their signature (bodies whose hash is not signed in a header,
// Alibaba forms), across all routes: a request beyond it is refused at once
// with 503 overloaded. Bodies whose hash is signed in a header are never
// read before their signature passed and do not count.
type BodyBufferConfig struct {
	// Bytes of such bodies held at once, in memory (the first MiB of each)
	// and in spool files, until their requests are done. Default: 1 GiB.
	MaxBytes int64 `json:"max_bytes,omitempty"`
	// Such bodies held at once. Default: 256.
	MaxBodies int `json:"max_bodies,omitempty"`
}

// bodyBudget is the node's: every route of every config reads within it, so
// that a reload never doubles it. The running app sets its limits.
var bodyBudget = enforcement.NewBodyBudget(enforcement.DefaultBodyBufferBytes, enforcement.DefaultBodyBufferBodies)

// The body buffer's metrics, read from bodyBudget at scrape time.
var (
	bodyBufferBytes = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "caddy",
		Subsystem: "access_auth",
		Name:      "body_buffer_bytes",
		Help:      "Bytes of request bodies held, read before their signature could be checked.",
	}, func() float64 { bytes, _ := bodyBudget.InUse(); return float64(bytes) })

	bodyBufferBodies = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "caddy",
		Subsystem: "access_auth",
		Name:      "body_buffer_bodies",
		Help:      "Request bodies held, read before their signature could be checked.",
	}, func() float64 { _, bodies := bodyBudget.InUse(); return float64(bodies) })

	bodyBufferRefused = prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: "caddy",
		Subsystem: "access_auth",
		Name:      "body_buffer_refused_total",
		Help:      "Requests refused as overloaded because the node's body buffer was spent.",
	}, func() float64 { return float64(bodyBudget.Refused()) })
)
