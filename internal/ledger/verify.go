package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"math/bits"

	"github.com/mycel-network/mycel/internal/tx"
)

// AuditSelected reports whether the audit seed selects a provider's request for audit:
// h = sha256(seed || ":" || provider || ":" || request id), x = the first 8 bytes of h as a
// big-endian integer, selected iff floor(x·10000 / 2^64) < probabilityBps. A probability of
// 10000 bps or more selects every request, 0 none. Verifiers and the ledger share this
// function, so both agree on which audits a seed demands.
func AuditSelected(seed []byte, providerAddr string, requestID string, probabilityBps uint64) bool {
	h := sha256.New()
	h.Write(seed)
	h.Write([]byte(":"))
	h.Write([]byte(providerAddr))
	h.Write([]byte(":"))
	h.Write([]byte(requestID))
	var sum [32]byte
	h.Sum(sum[:0])
	x := binary.BigEndian.Uint64(sum[:8])
	hi, _ := bits.Mul64(x, 10_000)
	return hi < probabilityBps
}

// AuditProbabilityBps is the audit probability of a provider with the given number of clean
// epochs: 10000 (100%) for a new provider, falling linearly to floorBps after cleanEpochs clean
// epochs and staying there.
func AuditProbabilityBps(clean, floorBps, cleanEpochs uint64) uint64 {
	floorBps = min(floorBps, 10_000)
	if cleanEpochs == 0 || clean >= cleanEpochs {
		return floorBps
	}
	return 10_000 - mulDiv(10_000-floorBps, clean, cleanEpochs)
}

// vparams returns the parameters with verification defaults filled in.
func (l *Ledger) vparams() Params { return l.params.withDefaults() }

// activeVerifier loads the sender's verifier record and fails unless it is active.
func (x *msgCtx) activeVerifier() (Verifier, Epoch, error) {
	ep, err := x.l.epoch(x.o)
	if err != nil {
		return Verifier{}, ep, err
	}
	v, ok, err := getJSON[Verifier](x.o, keyVerifier(x.sender))
	if err != nil {
		return v, ep, err
	}
	if !ok {
		return v, ep, fail(CodeUnauthorized, "unauthorized: %s is not a registered verifier", x.sender)
	}
	if ep.Number < v.JailedUntilEpoch {
		return v, ep, fail(CodeJailed, "verifier %s is jailed until epoch %d (now %d)", x.sender, v.JailedUntilEpoch, ep.Number)
	}
	if v.Stake < x.l.params.MinVerifierStake {
		return v, ep, fail(CodeUnauthorized, "unauthorized: verifier %s is inactive: stake %dumyc below the minimum %dumyc", x.sender, v.Stake, x.l.params.MinVerifierStake)
	}
	return v, ep, nil
}

// epochWindow fails unless e is the current epoch (if allowCurrent) or the previous one (if
// allowPrevious).
func epochWindow(what string, e, now uint64, allowCurrent, allowPrevious bool) error {
	if allowCurrent && e == now || allowPrevious && now > 0 && e == now-1 {
		return nil
	}
	want := fmt.Sprintf("the current epoch %d", now)
	switch {
	case allowPrevious && now == 0 && !allowCurrent:
		want = "an ended epoch, and none has ended yet"
	case allowPrevious && now == 0:
		want = "the current epoch 0"
	case allowCurrent && allowPrevious:
		want = fmt.Sprintf("the current epoch %d or the previous one %d", now, now-1)
	case allowPrevious:
		want = fmt.Sprintf("the previous epoch %d", now-1)
	}
	return fail(CodeInvalid, "%s for epoch %d outside its window: want %s", what, e, want)
}

func (x *msgCtx) anchorReceipts(m tx.AnchorReceipts) ([]Event, error) {
	ep, err := x.l.epoch(x.o)
	if err != nil {
		return nil, err
	}
	if err := epochWindow("anchor", m.Epoch, ep.Number, true, true); err != nil {
		return nil, err
	}
	k := keyAnchor(x.sender, m.Epoch)
	if _, ok := x.o.get(k); ok {
		return nil, fail(CodeInvalid, "%s already anchored receipts for epoch %d", x.sender, m.Epoch)
	}
	a := Anchor{Address: x.sender, Epoch: m.Epoch, Root: m.Root, Count: m.Count, AuditRoot: m.AuditRoot, Height: x.height}
	if err := putJSON(x.o, k, a); err != nil {
		return nil, err
	}
	return []Event{{Type: "anchor_receipts", Attrs: []Attr{
		{"address", x.sender}, {"epoch", u64(m.Epoch)}, {"root", m.Root}, {"count", u64(m.Count)}, {"audit_root", m.AuditRoot},
	}}}, nil
}

func (x *msgCtx) commitAuditSeed(m tx.CommitAuditSeed) ([]Event, error) {
	_, ep, err := x.activeVerifier()
	if err != nil {
		return nil, err
	}
	// Commit before the epoch starts (or in its first tenth): a verifier that has seen the
	// epoch's requests could otherwise grind seeds that skip the requests it did not audit.
	window := max(1, x.l.params.EpochLength/10)
	switch {
	case m.Epoch == ep.Number+1:
	case m.Epoch == ep.Number && x.height <= ep.LastHeight+int64(window):
	default:
		return nil, fail(CodeInvalid, "audit seed commitment for epoch %d outside its window: commit during the epoch before it or in its first %d blocks (now epoch %d)",
			m.Epoch, window, ep.Number)
	}
	k := keyAuditSeed(m.Epoch, x.sender)
	if _, ok := x.o.get(k); ok {
		return nil, fail(CodeInvalid, "%s already committed an audit seed for epoch %d", x.sender, m.Epoch)
	}
	if err := putJSON(x.o, k, AuditSeed{Verifier: x.sender, Epoch: m.Epoch, Commitment: m.Commitment, CommitHeight: x.height}); err != nil {
		return nil, err
	}
	return []Event{{Type: "commit_audit_seed", Attrs: []Attr{
		{"verifier", x.sender}, {"epoch", u64(m.Epoch)}, {"commitment", m.Commitment},
	}}}, nil
}

func (x *msgCtx) revealAuditSeed(m tx.RevealAuditSeed) ([]Event, error) {
	ep, err := x.l.epoch(x.o)
	if err != nil {
		return nil, err
	}
	if err := epochWindow("audit seed reveal", m.Epoch, ep.Number, false, true); err != nil {
		return nil, err
	}
	k := keyAuditSeed(m.Epoch, x.sender)
	s, ok, err := getJSON[AuditSeed](x.o, k)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fail(CodeNotFound, "%s committed no audit seed for epoch %d", x.sender, m.Epoch)
	}
	if s.Seed != "" {
		return nil, fail(CodeInvalid, "%s already revealed its audit seed for epoch %d", x.sender, m.Epoch)
	}
	seed, _ := hex.DecodeString(m.Seed) // ValidateBasic checked the hex
	if tx.AuditSeedCommitment(seed) != s.Commitment {
		return nil, fail(CodeInvalid, "audit seed does not match the commitment %s for epoch %d", s.Commitment, m.Epoch)
	}
	s.Seed = m.Seed
	s.RevealHeight = x.height
	if err := putJSON(x.o, k, s); err != nil {
		return nil, err
	}
	return []Event{{Type: "reveal_audit_seed", Attrs: []Attr{
		{"verifier", x.sender}, {"epoch", u64(m.Epoch)}, {"seed", m.Seed},
	}}}, nil
}

func (x *msgCtx) submitAuditReport(m tx.SubmitAuditReport) ([]Event, error) {
	_, ep, err := x.activeVerifier()
	if err != nil {
		return nil, err
	}
	if err := epochWindow("audit report", m.Epoch, ep.Number, true, true); err != nil {
		return nil, err
	}
	a, ok, err := getJSON[Anchor](x.o, keyAnchor(m.Anchor, m.Epoch))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fail(CodeNotFound, "%s anchored no receipts for epoch %d", m.Anchor, m.Epoch)
	}
	if a.AuditRoot == "" {
		return nil, fail(CodeInvalid, "the anchor of %s for epoch %d has no audit root: it cannot bind audits", m.Anchor, m.Epoch)
	}
	if chunks := tx.AnchorChunks(a.Count); m.Chunk >= chunks {
		return nil, fail(CodeInvalid, "chunk %d out of range: the anchor's %d leaves make %d chunks", m.Chunk, a.Count, chunks)
	}
	rk := keyAuditReport(m.Epoch, m.Anchor, m.Chunk, x.sender)
	if _, ok := x.o.get(rk); ok {
		return nil, fail(CodeInvalid, "%s already reported on chunk %d of the anchor of %s for epoch %d", x.sender, m.Chunk, m.Anchor, m.Epoch)
	}
	lk := keyAnchorLeaves(m.Epoch, m.Anchor, m.Chunk)
	leaves, published, err := getJSON[[]tx.AnchorLeaf](x.o, lk)
	if err != nil {
		return nil, err
	}
	events := []Event{}
	if len(m.Leaves) > 0 {
		if err := tx.VerifyAnchorChunk(m.Leaves, m.Chunk, a.Count, m.Proof, a.AuditRoot); err != nil {
			return nil, fail(CodeInvalid, "leaves do not match the anchor's audit root: %v", err)
		}
		if !published {
			leaves = m.Leaves
			if err := putJSON(x.o, lk, leaves); err != nil {
				return nil, err
			}
			events = append(events, Event{Type: "anchor_leaves", Attrs: []Attr{
				{"anchor", m.Anchor}, {"epoch", u64(m.Epoch)}, {"chunk", u64(m.Chunk)}, {"leaves", u64(uint64(len(leaves)))},
			}})
		}
	} else if !published {
		return nil, fail(CodeInvalid, "chunk %d of the anchor of %s for epoch %d is not on the ledger yet: include its leaves", m.Chunk, m.Anchor, m.Epoch)
	}
	for _, idx := range [][]uint32{m.Audited, m.Failed} {
		if len(idx) > 0 && int(idx[len(idx)-1]) >= len(leaves) {
			return nil, fail(CodeInvalid, "leaf index %d out of range (%d leaves)", idx[len(idx)-1], len(leaves))
		}
	}
	rep := AuditReport{Verifier: x.sender, Epoch: m.Epoch, Anchor: m.Anchor, Chunk: m.Chunk, Audited: m.Audited, Failed: m.Failed, Height: x.height}
	if rep.Audited == nil {
		rep.Audited = []uint32{}
	}
	if rep.Failed == nil {
		rep.Failed = []uint32{}
	}
	if err := putJSON(x.o, rk, rep); err != nil {
		return nil, err
	}
	// Reputation: every audited leaf of a registered provider counts as passed or failed.
	failed := make(map[uint32]bool, len(m.Failed))
	for _, f := range m.Failed {
		failed[f] = true
	}
	type pf struct{ pass, fail uint64 }
	counts := map[string]*pf{}
	var order []string
	for _, i := range m.Audited {
		p := leaves[i].Provider
		c := counts[p]
		if c == nil {
			c = &pf{}
			counts[p] = c
			order = append(order, p)
		}
		if failed[i] {
			c.fail++
		} else {
			c.pass++
		}
	}
	for _, p := range order {
		if _, ok := x.o.get(keyProvider(p)); !ok {
			continue
		}
		r, err := x.l.reputation(x.o, p)
		if err != nil {
			return nil, err
		}
		c := counts[p]
		r.AuditsPassed += c.pass
		r.AuditsFailed += c.fail
		r.EpochPassed += c.pass
		r.EpochFailed += c.fail
		if err := putJSON(x.o, keyReputation(p), r); err != nil {
			return nil, err
		}
	}
	st, err := x.l.verifierStats(x.o, x.sender)
	if err != nil {
		return nil, err
	}
	st.Reports++
	st.Audits += uint64(len(m.Audited))
	st.AuditsFailed += uint64(len(m.Failed))
	if err := putJSON(x.o, keyVerifierStats(x.sender), st); err != nil {
		return nil, err
	}
	return append(events, Event{Type: "audit_report", Attrs: []Attr{
		{"verifier", x.sender}, {"anchor", m.Anchor}, {"epoch", u64(m.Epoch)}, {"chunk", u64(m.Chunk)},
		{"audited", u64(uint64(len(m.Audited)))}, {"failed", u64(uint64(len(m.Failed)))},
	}}), nil
}

// reputation loads a provider's reputation; a provider without one is new (100% audits).
func (l *Ledger) reputation(g getter, p string) (Reputation, error) {
	r, ok, err := getJSON[Reputation](g, keyReputation(p))
	if err != nil {
		return r, err
	}
	if !ok {
		r = Reputation{Provider: p, AuditBps: 10_000, PrevAuditBps: 10_000}
	}
	return r, nil
}

func (l *Ledger) verifierStats(g getter, v string) (VerifierStats, error) {
	s, ok, err := getJSON[VerifierStats](g, keyVerifierStats(v))
	if err != nil {
		return s, err
	}
	if !ok {
		s = VerifierStats{Verifier: v}
	}
	return s, nil
}

func (x *msgCtx) commitWeights(m tx.CommitWeights) ([]Event, error) {
	_, ep, err := x.activeVerifier()
	if err != nil {
		return nil, err
	}
	if err := epochWindow("weights commitment", m.Epoch, ep.Number, true, false); err != nil {
		return nil, err
	}
	// A verifier may replace its commitment until the epoch ends.
	if err := putJSON(x.o, keyWeightCommit(m.Epoch, x.sender), WeightCommit{Hash: m.Hash, Height: x.height}); err != nil {
		return nil, err
	}
	return []Event{{Type: "commit_weights", Attrs: []Attr{
		{"verifier", x.sender}, {"epoch", u64(m.Epoch)}, {"hash", m.Hash},
	}}}, nil
}

func (x *msgCtx) revealWeights(m tx.RevealWeights) ([]Event, error) {
	ep, err := x.l.epoch(x.o)
	if err != nil {
		return nil, err
	}
	if err := epochWindow("weights reveal", m.Epoch, ep.Number, false, true); err != nil {
		return nil, err
	}
	c, ok, err := getJSON[WeightCommit](x.o, keyWeightCommit(m.Epoch, x.sender))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fail(CodeNotFound, "%s committed no weights for epoch %d; a reveal without a commitment is ignored", x.sender, m.Epoch)
	}
	rk := keyWeightReveal(m.Epoch, x.sender)
	if _, ok := x.o.get(rk); ok {
		return nil, fail(CodeInvalid, "%s already revealed weights for epoch %d", x.sender, m.Epoch)
	}
	if h := tx.WeightsCommitment(m.Epoch, x.sender, m.Weights, m.Salt); h != c.Hash {
		return nil, fail(CodeInvalid, "weights do not match the commitment %s for epoch %d", c.Hash, m.Epoch)
	}
	ws := m.Weights
	if ws == nil {
		ws = []tx.ProviderWeight{}
	}
	if err := putJSON(x.o, rk, WeightReveal{Verifier: x.sender, Epoch: m.Epoch, Weights: ws, Height: x.height}); err != nil {
		return nil, err
	}
	return []Event{{Type: "reveal_weights", Attrs: []Attr{
		{"verifier", x.sender}, {"epoch", u64(m.Epoch)}, {"providers", u64(uint64(len(ws)))},
	}}}, nil
}

func (x *msgCtx) recordCapacity(m tx.RecordCapacity) ([]Event, error) {
	_, ep, err := x.activeVerifier()
	if err != nil {
		return nil, err
	}
	if err := epochWindow("capacity record", m.Epoch, ep.Number, true, false); err != nil {
		return nil, err
	}
	p, ok, err := getJSON[Provider](x.o, keyProvider(m.Provider))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fail(CodeNotFound, "provider %s not registered", m.Provider)
	}
	serves := false
	for _, sm := range p.Models {
		serves = serves || sm.ModelID == m.ModelID
	}
	if !serves {
		return nil, fail(CodeInvalid, "provider %s does not serve model %q", m.Provider, m.ModelID)
	}
	rec := CapacityRecord{Verifier: x.sender, TokensPerSecMilli: m.TokensPerSecMilli, Height: x.height}
	if err := putJSON(x.o, keyCapacityRecord(m.Epoch, m.Provider, m.ModelID, x.sender), rec); err != nil {
		return nil, err
	}
	return []Event{{Type: "record_capacity", Attrs: []Attr{
		{"verifier", x.sender}, {"provider", m.Provider}, {"model_id", m.ModelID},
		{"tokens_per_sec_milli", u64(m.TokensPerSecMilli)}, {"epoch", u64(m.Epoch)},
	}}}, nil
}
