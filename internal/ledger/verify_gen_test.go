package ledger

import (
	"encoding/hex"
	"fmt"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/tx"
)

// verifierName picks a registered verifier (usually) or any name.
func (g *gen) verifierName() string {
	var vs []string
	for _, n := range g.names {
		if _, ok := g.l.block.get(keyVerifier(testAddr(n))); ok {
			vs = append(vs, n)
		}
	}
	if len(vs) == 0 || g.r.Intn(6) == 0 {
		return g.name()
	}
	return vs[g.r.Intn(len(vs))]
}

// genLeaves is the deterministic leaf list the named anchorer publishes for an epoch.
func genLeaves(name string, e uint64) []tx.AnchorLeaf {
	n := 1 + int(e%3)
	var ls []tx.AnchorLeaf
	for i := range n {
		p := []string{"p1", "p2"}[i%2]
		ls = append(ls, tx.AnchorLeaf{Provider: testAddr(p), RequestID: fmt.Sprintf("%s-%d-%d", name, e, i)})
	}
	return ls
}

// genWeights is the deterministic weight vector a verifier commits and reveals for an epoch.
func genWeights(name string, e uint64) []tx.ProviderWeight {
	ws := []tx.ProviderWeight{
		{Provider: testAddr("p1"), Weight: uint32(len(name)*7+int(e)) % 10},
		{Provider: testAddr("p2"), Weight: uint32(len(name)*3+2*int(e)) % 10},
	}
	if ws[0].Provider > ws[1].Provider {
		ws[0], ws[1] = ws[1], ws[0]
	}
	return ws
}

// verifyMsg returns a random verification message from the named sender, mostly plausible.
func (g *gen) verifyMsg(from string) interface{ Type() string } {
	ep, _ := g.l.epoch(g.l.block)
	cur := ep.Number
	prev := cur - min(cur, 1)
	if g.r.Intn(10) == 0 {
		prev = cur + 1 // out of window
	}
	seed := func(e uint64) []byte { return testSeed(fmt.Sprintf("%s/%d", from, e)) }
	prov := []string{"p1", "p2"}[g.r.Intn(2)]
	switch g.r.Intn(10) {
	case 0:
		e := []uint64{cur, prev}[g.r.Intn(2)]
		ls := genLeaves(from, e)
		return tx.AnchorReceipts{Epoch: e, Root: tx.AnchorRoot(ls), Count: uint64(len(ls)), AuditRoot: tx.AnchorRoot(ls)}
	case 1:
		return tx.CommitAuditSeed{Epoch: cur + 1, Commitment: tx.AuditSeedCommitment(seed(cur + 1))}
	case 2:
		return tx.RevealAuditSeed{Epoch: prev, Seed: hex.EncodeToString(seed(prev))}
	case 3:
		e := []uint64{cur, prev}[g.r.Intn(2)]
		anchor := g.name()
		ls := genLeaves(anchor, e)
		m := tx.SubmitAuditReport{Epoch: e, Anchor: testAddr(anchor), Audited: []uint32{}, Failed: []uint32{}}
		if g.r.Intn(3) != 0 {
			m.Leaves = ls
		}
		for i := range ls {
			if g.r.Intn(5) != 0 {
				m.Audited = append(m.Audited, uint32(i))
				if g.r.Intn(6) == 0 {
					m.Failed = append(m.Failed, uint32(i))
				}
			}
		}
		return m
	case 4:
		r := channel.Receipt{ChainID: testChain, RequestID: fmt.Sprintf("r%d", g.r.Intn(40)), Provider: testAddr(prov),
			Consumer: testAddr("carol"), ChannelID: 1, ModelID: "m1", TokensIn: 10, TokensOut: 20,
			PriceInPerMTok: 1000, PriceOutPerMTok: 1000, Cost: 1, Cumulative: 1, FinishReason: "stop"}
		signer := prov
		if g.r.Intn(8) == 0 {
			signer = g.name()
		}
		return tx.SubmitEvidence{Receipt: channel.SignReceipt(r, testKey(signer)), Bond: 500_000 + uint64(g.r.Intn(2_000_000)),
			Summary: tx.EvidenceSummary{PositionsChecked: 20, Mismatches: 9, Verdict: tx.VerdictMismatch}}
	case 5:
		c, _, _ := getJSON[Counters](g.l.block, keyCounters)
		return tx.VoteEvidence{ID: 1 + uint64(g.r.Intn(int(c.Evidence)+1)), Guilty: g.r.Intn(3) != 0}
	case 6:
		return tx.CommitWeights{Epoch: cur, Hash: tx.WeightsCommitment(cur, testAddr(from), genWeights(from, cur), "aa")}
	case 7, 8:
		return tx.RevealWeights{Epoch: prev, Weights: genWeights(from, prev), Salt: "aa"}
	default:
		return tx.RecordCapacity{Provider: testAddr(prov), ModelID: "m1", TokensPerSecMilli: uint64(g.r.Intn(50_000)), Epoch: cur}
	}
}
