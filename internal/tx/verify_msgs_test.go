package tx

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/provider/reveal"
)

func hexOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func sampleReceipt() channel.Receipt {
	r := channel.Receipt{ChainID: "mycel-test", RequestID: "req-1", Provider: addr("pat"), Consumer: addr("carl"),
		ChannelID: 1, ModelID: "m1", ModelSHA256: hexOf("m1"), RequestHash: hexOf("req"), OutputHash: hexOf("out"),
		TokensIn: 10, TokensOut: 20, PriceInPerMTok: 1000, PriceOutPerMTok: 2000, Cost: 1, Cumulative: 1,
		LogprobsCommitment: hexOf("lp"), FinishReason: "stop", TimeUnixMs: 1}
	return channel.SignReceipt(r, testKey("pat"))
}

func TestVerifyMsgsValidateBasic(t *testing.T) {
	h := hexOf("x")
	leaves := []AnchorLeaf{{addr("p1"), "r1"}, {addr("p2"), "r2"}, {addr("p1"), "r3"}}
	ev := SubmitEvidence{Receipt: sampleReceipt(), Summary: EvidenceSummary{PositionsChecked: 20, Mismatches: 7, Verdict: VerdictSubstitution}, Bond: 5}
	mutEv := func(f func(*SubmitEvidence)) SubmitEvidence {
		e := ev
		f(&e)
		return e
	}
	sig64 := base64.RawURLEncoding.EncodeToString(make([]byte, ed25519.SignatureSize)) // well-formed, not verified here
	ws := []ProviderWeight{{addr("p1"), 3}, {addr("p2"), 1}}
	if ws[0].Provider > ws[1].Provider {
		ws[0], ws[1] = ws[1], ws[0]
	}
	tests := []struct {
		name string
		m    Message
		ok   bool
	}{
		{"anchor ok", AnchorReceipts{Epoch: 1, Root: h, Count: 3}, true},
		{"anchor upper-case root", AnchorReceipts{Epoch: 1, Root: strings.ToUpper(h), Count: 3}, false},
		{"anchor short root", AnchorReceipts{Epoch: 1, Root: h[:62], Count: 3}, false},
		{"anchor zero count", AnchorReceipts{Epoch: 1, Root: h}, false},
		{"anchor with audit root", AnchorReceipts{Epoch: 1, Root: h, Count: 3, AuditRoot: hexOf("a")}, true},
		{"anchor bad audit root", AnchorReceipts{Epoch: 1, Root: h, Count: 3, AuditRoot: "x"}, false},
		{"commit seed ok", CommitAuditSeed{Epoch: 0, Commitment: h}, true},
		{"commit seed bad", CommitAuditSeed{Epoch: 0, Commitment: "zz"}, false},
		{"reveal seed ok", RevealAuditSeed{Epoch: 0, Seed: h}, true},
		{"reveal seed short", RevealAuditSeed{Epoch: 0, Seed: "00"}, false},
		{"report ok", SubmitAuditReport{Epoch: 1, Anchor: addr("g"), Leaves: leaves, Audited: []uint32{0, 2}, Failed: []uint32{2}}, true},
		{"report no leaves", SubmitAuditReport{Epoch: 1, Anchor: addr("g"), Audited: []uint32{5}}, true},
		{"report bad anchor", SubmitAuditReport{Epoch: 1, Anchor: "nope"}, false},
		{"report index out of range", SubmitAuditReport{Epoch: 1, Anchor: addr("g"), Leaves: leaves, Audited: []uint32{3}}, false},
		{"report unsorted", SubmitAuditReport{Epoch: 1, Anchor: addr("g"), Leaves: leaves, Audited: []uint32{2, 0}}, false},
		{"report duplicate", SubmitAuditReport{Epoch: 1, Anchor: addr("g"), Leaves: leaves, Audited: []uint32{1, 1}}, false},
		{"report failed not audited", SubmitAuditReport{Epoch: 1, Anchor: addr("g"), Leaves: leaves, Audited: []uint32{0}, Failed: []uint32{1}}, false},
		{"report bad leaf provider", SubmitAuditReport{Epoch: 1, Anchor: addr("g"), Leaves: []AnchorLeaf{{"x", "r"}}}, false},
		{"report bad request id", SubmitAuditReport{Epoch: 1, Anchor: addr("g"), Leaves: []AnchorLeaf{{addr("p"), "a b"}}}, false},
		{"evidence ok", ev, true},
		{"evidence unsigned", mutEv(func(e *SubmitEvidence) { e.Receipt.Signature = nil }), false},
		{"evidence bad cost", mutEv(func(e *SubmitEvidence) { e.Receipt.Cost = 9 }), false},
		{"evidence bad hash", mutEv(func(e *SubmitEvidence) { e.Receipt.OutputHash = "abc" }), false},
		{"evidence bad verdict", mutEv(func(e *SubmitEvidence) { e.Summary.Verdict = "vibes" }), false},
		{"evidence mismatches > positions", mutEv(func(e *SubmitEvidence) { e.Summary.Mismatches = 21 }), false},
		{"evidence zero bond", mutEv(func(e *SubmitEvidence) { e.Bond = 0 }), false},
		{"evidence no chain", mutEv(func(e *SubmitEvidence) { e.Receipt.ChainID = "" }), false},
		{"evidence material ok", mutEv(func(e *SubmitEvidence) {
			e.Material = &EvidenceMaterial{Request: "req", Output: "out", TokenIDs: []int32{1, 2}, LogprobBits: []uint32{3, 4}}
		}), true},
		{"evidence material other request", mutEv(func(e *SubmitEvidence) {
			e.Material = &EvidenceMaterial{Request: "req2", Output: "out", TokenIDs: []int32{1}}
		}), false},
		{"evidence material other output", mutEv(func(e *SubmitEvidence) {
			e.Material = &EvidenceMaterial{Request: "req", Output: "out!", TokenIDs: []int32{1}}
		}), false},
		{"evidence material logprobs count", mutEv(func(e *SubmitEvidence) {
			e.Material = &EvidenceMaterial{Request: "req", Output: "out", TokenIDs: []int32{1, 2}, LogprobBits: []uint32{3}}
		}), false},
		{"evidence material negative id", mutEv(func(e *SubmitEvidence) {
			e.Material = &EvidenceMaterial{Request: "req", Output: "out", TokenIDs: []int32{-1}}
		}), false},
		{"evidence material signed reveal", mutEv(func(e *SubmitEvidence) {
			e.Material = &EvidenceMaterial{Request: "req", Output: "out", TokenIDs: []int32{1, 2}, LogprobBits: []uint32{3, 4}, RevealSignature: sig64}
		}), true},
		{"evidence material signed reveal without logprobs", mutEv(func(e *SubmitEvidence) {
			e.Material = &EvidenceMaterial{Request: "req", Output: "out", TokenIDs: []int32{1, 2}, RevealSignature: sig64}
		}), false},
		{"evidence material signed reveal with a negative id", mutEv(func(e *SubmitEvidence) {
			e.Material = &EvidenceMaterial{Request: "req", Output: "out", TokenIDs: []int32{-1}, LogprobBits: []uint32{3}, RevealSignature: sig64}
		}), true},
		{"evidence material malformed reveal signature", mutEv(func(e *SubmitEvidence) {
			e.Material = &EvidenceMaterial{Request: "req", Output: "out", TokenIDs: []int32{1}, LogprobBits: []uint32{3}, RevealSignature: sig64[:40]}
		}), false},
		{"evidence material too long", mutEv(func(e *SubmitEvidence) {
			e.Material = &EvidenceMaterial{Request: strings.Repeat("x", MaxEvidenceRequest+1), Output: "out"}
		}), false},
		{"vote ok", VoteEvidence{ID: 1, Guilty: true}, true},
		{"vote zero id", VoteEvidence{}, false},
		{"commit weights ok", CommitWeights{Epoch: 2, Hash: h}, true},
		{"commit weights bad", CommitWeights{Epoch: 2, Hash: ""}, false},
		{"reveal weights ok", RevealWeights{Epoch: 2, Weights: ws, Salt: "abcd"}, true},
		{"reveal weights empty vector", RevealWeights{Epoch: 2, Salt: "ab"}, true},
		{"reveal weights unsorted", RevealWeights{Epoch: 2, Weights: []ProviderWeight{ws[1], ws[0]}, Salt: "ab"}, false},
		{"reveal weights duplicate", RevealWeights{Epoch: 2, Weights: []ProviderWeight{ws[0], ws[0]}, Salt: "ab"}, false},
		{"reveal weights no salt", RevealWeights{Epoch: 2, Weights: ws}, false},
		{"reveal weights odd salt", RevealWeights{Epoch: 2, Weights: ws, Salt: "abc"}, false},
		{"reveal weights upper salt", RevealWeights{Epoch: 2, Weights: ws, Salt: "AB"}, false},
		{"capacity ok", RecordCapacity{Provider: addr("p"), ModelID: "m1", TokensPerSecMilli: 1500}, true},
		{"capacity bad model", RecordCapacity{Provider: addr("p"), ModelID: "M1"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.m.ValidateBasic()
			if tt.ok && err != nil {
				t.Errorf("ValidateBasic = %v, want nil", err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalid) {
				t.Errorf("ValidateBasic = %v, want ErrInvalid", err)
			}
			// Every message round-trips through Msg.
			msg, err := NewMsg(tt.m)
			if err != nil {
				t.Fatal(err)
			}
			got, err := msg.Decode()
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if diff := cmp.Diff(any(tt.m), got); diff != "" {
				t.Errorf("Decode(NewMsg(m)) (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAnchorRoot(t *testing.T) {
	leaf := func(p, r string) [32]byte {
		return sha256.Sum256([]byte(AnchorLeafDomain + p + "\x00" + r))
	}
	node := func(a, b [32]byte) [32]byte {
		return sha256.Sum256(append(append([]byte(AnchorNodeDomain), a[:]...), b[:]...))
	}
	l1, l2, l3 := leaf("a", "1"), leaf("b", "2"), leaf("a", "3")
	empty := sha256.Sum256([]byte(AnchorNodeDomain))
	three := node(node(l1, l2), l3)
	tests := []struct {
		leaves []AnchorLeaf
		want   [32]byte
	}{
		{nil, empty},
		{[]AnchorLeaf{{"a", "1"}}, l1},
		{[]AnchorLeaf{{"a", "1"}, {"b", "2"}}, node(l1, l2)},
		{[]AnchorLeaf{{"a", "1"}, {"b", "2"}, {"a", "3"}}, three},
	}
	for i, tt := range tests {
		if got := AnchorRoot(tt.leaves); got != hex.EncodeToString(tt.want[:]) {
			t.Errorf("case %d: AnchorRoot = %s, want %x", i, got, tt.want)
		}
	}
	// The separator makes ("ab","c") and ("a","bc") different leaves.
	if (AnchorLeaf{"ab", "c"}).Hash() == (AnchorLeaf{"a", "bc"}).Hash() {
		t.Error("leaf hash is ambiguous")
	}
}

func TestCommitments(t *testing.T) {
	seed := []byte("0123456789abcdef0123456789abcdef")
	s := sha256.Sum256(seed)
	if got := AuditSeedCommitment(seed); got != hex.EncodeToString(s[:]) {
		t.Errorf("AuditSeedCommitment = %s", got)
	}
	ws := []ProviderWeight{{addr("p1"), 3}}
	base := WeightsCommitment(1, addr("v"), ws, "ab")
	if !isHex32(base) {
		t.Fatalf("WeightsCommitment = %q, not 64 hex digits", base)
	}
	for name, other := range map[string]string{
		"epoch":    WeightsCommitment(2, addr("v"), ws, "ab"),
		"verifier": WeightsCommitment(1, addr("w"), ws, "ab"),
		"weight":   WeightsCommitment(1, addr("v"), []ProviderWeight{{addr("p1"), 4}}, "ab"),
		"salt":     WeightsCommitment(1, addr("v"), ws, "ac"),
	} {
		if other == base {
			t.Errorf("changing the %s does not change the commitment", name)
		}
	}
	if WeightsCommitment(1, addr("v"), nil, "ab") != WeightsCommitment(1, addr("v"), []ProviderWeight{}, "ab") {
		t.Error("nil and empty weight vectors commit differently")
	}
}

func TestAnchorChunkProofs(t *testing.T) {
	for _, n := range []int{1, 2, 255, 256, 257, 600, 1024, 1025} {
		leaves := make([]AnchorLeaf, n)
		for i := range leaves {
			leaves[i] = AnchorLeaf{Provider: "p", RequestID: strings.Repeat("r", 1+i%3) + string(rune('a'+i%26)) + hexOf(string(rune(i)))[:6]}
		}
		root := AnchorRoot(leaves)
		chunks := AnchorChunks(uint64(n))
		if want := uint64((n + 255) / 256); chunks != want {
			t.Fatalf("n=%d: %d chunks, want %d", n, chunks, want)
		}
		for c := uint64(0); c < chunks; c++ {
			part := leaves[c*AuditChunkLeaves : min(uint64(n), (c+1)*AuditChunkLeaves)]
			proof := AnchorChunkProof(leaves, c)
			if err := VerifyAnchorChunk(part, c, uint64(n), proof, root); err != nil {
				t.Fatalf("n=%d chunk %d: %v", n, c, err)
			}
			bad := map[string]func() error{
				"other leaf": func() error {
					p := append([]AnchorLeaf(nil), part...)
					p[len(p)-1].RequestID += "x"
					return VerifyAnchorChunk(p, c, uint64(n), proof, root)
				},
				"extra hash": func() error { return VerifyAnchorChunk(part, c, uint64(n), append(proof, hexOf("x")), root) },
			}
			if c == chunks-1 { // the last chunk's size depends on the count
				bad["other count"] = func() error { return VerifyAnchorChunk(part, c, uint64(n)+1, proof, root) }
			}
			if len(proof) > 0 {
				bad["short proof"] = func() error { return VerifyAnchorChunk(part, c, uint64(n), proof[1:], root) }
				bad["other chunk"] = func() error { return VerifyAnchorChunk(part, c^1, uint64(n), proof, root) }
			}
			for name, f := range bad {
				if err := f(); !errors.Is(err, ErrInvalid) {
					t.Errorf("n=%d chunk %d %s: err %v, want ErrInvalid", n, c, name, err)
				}
			}
		}
		if AnchorChunkProof(leaves, chunks) != nil {
			t.Errorf("n=%d: proof for a chunk out of range", n)
		}
	}
}

// TestEvidenceMaterialVerifyReveal: a reveal signed by the receipt's provider verifies, and
// SignedRevealContradicts tells values that hash to the receipt's commitment from values that
// do not; a signature by another key, or over other values, request or chain, does not
// verify; no signature is no claim.
func TestEvidenceMaterialVerifyReveal(t *testing.T) {
	ids, lps := []int32{4, 9, 2}, []float32{-0.25, -3, -1e-3}
	bits := []uint32{math.Float32bits(lps[0]), math.Float32bits(lps[1]), math.Float32bits(lps[2])}
	r := sampleReceipt()
	pub := testKey("pat").Public().(ed25519.PublicKey)
	material := func(rc channel.Receipt, signer string, ids []int32) EvidenceMaterial {
		return EvidenceMaterial{Request: "req", Output: "out", TokenIDs: ids, LogprobBits: bits,
			RevealSignature: reveal.SignAnswer(rc.ChainID, rc.Provider, rc.RequestID, ids, lps, testKey(signer))}
	}

	m := material(r, "pat", ids)
	if err := (SubmitEvidence{Receipt: r, Summary: EvidenceSummary{Verdict: VerdictQuantization}, Bond: 1, Material: &m}).ValidateBasic(); err != nil {
		t.Fatalf("ValidateBasic: %v", err)
	}
	if err := m.VerifyReveal(r, pub); err != nil {
		t.Fatalf("VerifyReveal of the provider's signature: %v", err)
	}
	if !m.SignedRevealContradicts(r) {
		t.Error("values that do not hash to the receipt's commitment: SignedRevealContradicts = false")
	}
	matching := r
	matching.LogprobsCommitment = channel.LogprobsCommitment(ids, lps)
	if m.SignedRevealContradicts(matching) {
		t.Error("values that hash to the receipt's commitment: SignedRevealContradicts = true")
	}
	if unsigned := (EvidenceMaterial{Request: "req", Output: "out", TokenIDs: ids, LogprobBits: bits}); unsigned.VerifyReveal(r, pub) != nil || unsigned.SignedRevealContradicts(r) {
		t.Error("material without a reveal signature: want no error and no contradiction")
	}

	otherReq, otherChain := r, r
	otherReq.RequestID, otherChain.ChainID = "req-2", "other-chain"
	tampered := material(r, "pat", ids)
	tampered.LogprobBits = append([]uint32{bits[0] ^ 1}, bits[1:]...)
	otherIDs := material(r, "pat", ids)
	otherIDs.TokenIDs = []int32{4, 9, 3}
	for name, m := range map[string]EvidenceMaterial{
		"another key":      material(r, "carl", ids),
		"other ids":        otherIDs,
		"other logprob":    tampered,
		"other request id": material(otherReq, "pat", ids),
		"other chain":      material(otherChain, "pat", ids),
	} {
		if err := m.VerifyReveal(r, pub); !errors.Is(err, channel.ErrBadRevealAnswer) {
			t.Errorf("%s: VerifyReveal = %v, want ErrBadRevealAnswer", name, err)
		}
	}
}
