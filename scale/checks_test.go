package scale

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/accessauth/caddy-access-auth/internal/bulkgen"
	"github.com/accessauth/caddy-access-auth/internal/gatewaytest"
	"github.com/accessauth/caddy-access-auth/signature"
)

// revocationBound is how long after an acknowledged revocation a node may
// still accept the key: the propagation target is 100 ms at p99; the rest
// is room for a shared, loaded machine.
const revocationBound = time.Second

var adminClient = &http.Client{Timeout: 15 * time.Second}

// adminCall sends an admin API request; status 0 means no answer.
func adminCall(n *gatewaytest.Node, method, path string, body any) (int, []byte) {
	encoded, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, n.Admin+path, bytes.NewReader(encoded))
	req.Header.Set("Content-Type", "application/json")
	resp, err := adminClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes()
}

// call sends one signed request as the i-th bulk key; 0 when unanswered.
func call(n *gatewaytest.Node, key int) int {
	req, _ := http.NewRequest(http.MethodGet, n.Site+"/x", nil)
	if err := signature.Sign(req, signature.JDCloud2, bulkgen.APIKey(key), bulkgen.Secret(key)); err != nil {
		panic(err)
	}
	a, err := gatewaytest.SendRequest(req)
	if err != nil {
		return 0
	}
	return a.Status
}

// writer creates keys through one node for as long as ctx lasts and logs
// every creation the node acknowledged; lost counts those missing at the
// end.
type writer struct {
	node    *gatewaytest.Node
	mu      sync.Mutex
	acked   []string
	refused int // 503: not acknowledged, may or may not be there
	other   []string
}

func (w *writer) run(ctx context.Context) {
	for i := 0; ctx.Err() == nil; i++ {
		status, body := adminCall(w.node, http.MethodPost, "/access-auth/keys", map[string]any{"name": fmt.Sprintf("writer-%d-%d", time.Now().UnixNano(), i)})
		var created struct{ ID string }
		w.mu.Lock()
		switch {
		case status == http.StatusCreated && json.Unmarshal(body, &created) == nil:
			w.acked = append(w.acked, created.ID)
		case status == http.StatusServiceUnavailable || status == 0:
			w.refused++
			time.Sleep(50 * time.Millisecond)
		default:
			w.other = append(w.other, fmt.Sprintf("%d %.100s", status, body))
		}
		w.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
}

// lost reads back every acknowledged creation.
func (w *writer) lost(n *gatewaytest.Node) (lost int, err error) {
	for _, id := range w.acked {
		switch status, body := adminCall(n, http.MethodGet, "/access-auth/keys/"+id, nil); status {
		case http.StatusOK:
		case http.StatusNotFound:
			lost++
		default:
			return lost, fmt.Errorf("reading key %s: %d %s", id, status, body)
		}
	}
	return lost, nil
}

// revoker disables bulk keys one after another through one node and probes
// every node until it refuses the key: the propagation of each revocation,
// and how many times a node still accepted a key after revocationBound.
type revoker struct {
	via, nodes []*gatewaytest.Node
	down       func(i int) bool
	next       int // the next bulk key to revoke
	mu         sync.Mutex
	lags       []time.Duration
	late       int
	revoked    int
}

func (r *revoker) run(ctx context.Context) {
	for ctx.Err() == nil {
		key := r.next
		r.next++
		for i, n := range r.nodes { // cached everywhere first, so the feed must evict it
			if !r.down(i) {
				call(n, key)
			}
		}
		status, _ := adminCall(r.via[0], http.MethodPatch, "/access-auth/keys/"+bulkgen.KeyID(key), map[string]any{"enabled": false})
		if status != http.StatusOK {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		acked := time.Now()
		for i, n := range r.nodes {
			if r.down(i) {
				continue
			}
			for {
				s := call(n, key)
				since := time.Since(acked)
				if s == http.StatusOK && since > revocationBound {
					r.mu.Lock()
					r.late++
					r.mu.Unlock()
				}
				if s != http.StatusOK || since > 5*revocationBound {
					if s == http.StatusUnauthorized || s == http.StatusForbidden {
						r.mu.Lock()
						r.lags = append(r.lags, since)
						r.mu.Unlock()
					}
					break
				}
				time.Sleep(2 * time.Millisecond)
			}
		}
		r.mu.Lock()
		r.revoked++
		r.mu.Unlock()
		time.Sleep(100 * time.Millisecond)
	}
}

// p99 is the revocations' propagation p99.
func (r *revoker) p99() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	lags := slices.Clone(r.lags)
	slices.Sort(lags)
	if len(lags) == 0 {
		return 0
	}
	return lags[min(len(lags)-1, len(lags)*99/100)]
}
