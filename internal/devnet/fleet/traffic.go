package fleet

import "github.com/mycel-network/mycel/internal/explorer"

// Traffic is the gateway's traffic (explorer.Traffic): totals, failovers, hedges, spend and
// per provider the requests the gateway sent it with their TTFT and tokens/s. Audit requests
// the verifier sends providers directly are not in it.
func (f *Fleet) Traffic() explorer.TrafficSnapshot { return f.gw.Traffic() }
