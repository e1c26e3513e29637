// Package limits enforces usage plans: a rate (a token bucket) and a quota
// per calendar period for each budget, decided in process so that a
// request with a plan costs no store round trip (docs/usage-plans.md).
//
// # Budgets
//
// A budget is what one plan meters: an authorization's own (all the key's
// calls, Group "") or a binding's (one group's calls). Each has
//
//   - a token bucket holding requests+burst tokens, refilled at requests
//     per period and full at first: exact on one node;
//   - a quota count per calendar period (UTC day, ISO week, month), named by
//     store.QuotaCounter, so a new period starts from 0 and a plan whose
//     limit changes keeps its count.
//
// Plans' definitions are read from the store once and cached; Changed
// (called for every change the store's feed carries) reloads the cached
// ones in the background, so an edited plan takes effect within the feed's
// propagation bound. Detaching a plan needs nothing here: the credential
// cache reloads the authorization, which then names no plan.
//
// # One node (embedded store)
//
// Counts are exact in memory. A quota's count is read from the store's
// counters at its first use in a period and the node's increments are
// added back with store.AddCounts at most every second (Run), so a quota
// survives a restart and a crash loses at most one second of counts.
//
// # Several nodes (Redis)
//
// Nodes share each budget through counters in Redis without a round trip
// per request: a node leases a block of tokens with one single-key script
// (Shared.Lease) that adds the block to the counter but never beyond the
// limit, and spends the block locally. The quota's counter is the period's
// store counter itself; the rate's is a counter per window of the rate's
// period (RateWindowCounter) that admits `requests` per window across the
// nodes, on top of each node's own bucket. A lease is sized to recent
// demand (doubling while blocks run out within leaseFast, halving when they
// last longer than leaseSlow) and never exceeds a share of what remains
// (remaining ÷ (2 × nodes)), so blocks shrink as a budget nears its end.
// A node that learns a counter is spent asks again only after
// exhaustedRetry (or at the window's end), so refused requests cost no
// round trips either. Tokens leased and never spent are under-admission,
// never over-admission: the quota is never exceeded while Redis answers;
// unspent quota tokens are given back when the limiter closes.
//
// # Redis outage
//
// A lease that fails is never a 5xx: the node admits its local share of
// what it last knew remained — (limit − used) ÷ nodes, where nodes is the
// live node count every node refreshes in Redis every nodesEvery
// (Shared.Nodes; 1 until first known) — once per window or period, and
// asks Redis again after outageRetry. The quota tokens spent meanwhile are
// added to the counter once Redis answers again (the flush of Run), so the
// count stays true even where the outage let the nodes overshoot.
package limits
