package ledger

import (
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/mycel-network/mycel/internal/tx"
)

// TestAuditCompliance checks the compliance rule below 100%: a verifier must have audited
// exactly the leaves its revealed seed selects at the provider's probability of the epoch
// (prev_audit_bps), no more is needed, and one missing selected leaf, a missing report or an
// unrevealed seed makes it non-compliant.
func TestAuditCompliance(t *testing.T) {
	l := newTestLedger(t, DefaultParams(), nil)
	o := newOverlay(l.committed)
	prov := testAddr("p")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(putJSON(o, keyProvider(prov), Provider{Address: prov}))
	must(putJSON(o, keyReputation(prov), Reputation{Provider: prov, AuditBps: 9000, PrevAuditBps: 3000}))
	var leaves []tx.AnchorLeaf
	for i := range 60 {
		leaves = append(leaves, tx.AnchorLeaf{Provider: prov, RequestID: fmt.Sprintf("r%d", i)})
	}
	leaves = append(leaves, tx.AnchorLeaf{Provider: testAddr("unregistered"), RequestID: "x"})
	const e = 4
	anchor := testAddr("gw")
	must(putJSON(o, keyAnchorLeaves(e, anchor), leaves))
	seed := testSeed("v")
	var selected []uint32
	for i, lf := range leaves {
		if AuditSelected(seed, lf.Provider, lf.RequestID, 3000) && lf.Provider == prov {
			selected = append(selected, uint32(i))
		}
	}
	if len(selected) < 5 || len(selected) > 35 {
		t.Fatalf("%d of 60 selected at 30%%: the seed is unlucky or selection is broken", len(selected))
	}
	v := testAddr("v")
	setup := func(reveal bool, audited []uint32) *overlay {
		x := newOverlay(o)
		s := AuditSeed{Verifier: v, Epoch: e, Commitment: tx.AuditSeedCommitment(seed)}
		if reveal {
			s.Seed = hex.EncodeToString(seed)
		}
		must(putJSON(x, keyAuditSeed(e, v), s))
		if audited != nil {
			must(putJSON(x, keyAuditReport(e, anchor, v), AuditReport{Verifier: v, Epoch: e, Anchor: anchor, Audited: audited}))
		}
		return x
	}
	for _, tt := range []struct {
		name    string
		reveal  bool
		audited []uint32
		want    bool
	}{
		{"exactly the selected leaves", true, selected, true},
		{"one selected leaf missing", true, selected[1:], false},
		{"no report", true, nil, false},
		{"seed not revealed", false, selected, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := l.auditCompliance(setup(tt.reveal, tt.audited), e)
			if err != nil {
				t.Fatal(err)
			}
			if got := ok(v); got != tt.want {
				t.Errorf("compliant = %t, want %t", got, tt.want)
			}
		})
	}
	// An epoch without binding anchors demands nothing.
	ok, err := l.auditCompliance(o, e+1)
	if err != nil {
		t.Fatal(err)
	}
	if !ok(v) {
		t.Error("no binding anchors: want compliant")
	}
}

// BenchmarkYuma measures one epoch's consensus for 64 verifiers and 256 providers.
func BenchmarkYuma(b *testing.B) {
	const nv, np = 64, 256
	in := yumaInput{AlphaBps: 1000, ClipLowBps: 2000, Stakes: make([]uint64, nv), Weights: make([][]uint64, nv), Bonds: make([][]uint64, nv)}
	for i := range nv {
		in.Stakes[i] = uint64(100_000_000 + i*1_000_000)
		in.Weights[i] = make([]uint64, np)
		in.Bonds[i] = make([]uint64, np)
		for j := range np {
			in.Weights[i][j] = uint64((i*31 + j*17) % 1000)
			in.Bonds[i][j] = Scale / nv
		}
	}
	for b.Loop() {
		yuma(in)
	}
}
