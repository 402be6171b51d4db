package ledger

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mycel-network/mycel/internal/tx"
)

func (x *msgCtx) submitEvidence(m tx.SubmitEvidence) ([]Event, error) {
	_, _, err := x.activeVerifier()
	if err != nil {
		return nil, err
	}
	p := x.l.vparams()
	r := m.Receipt
	if r.ChainID != x.l.chainID {
		return nil, fail(CodeChainID, "receipt for chain %.64q, this chain is %q", r.ChainID, x.l.chainID)
	}
	if r.Provider == x.sender {
		return nil, fail(CodeInvalid, "a verifier cannot accuse itself")
	}
	if _, ok := x.o.get(keyProvider(r.Provider)); !ok {
		return nil, fail(CodeNotFound, "provider %s not registered", r.Provider)
	}
	acct, err := x.l.account(x.o, r.Provider)
	if err != nil {
		return nil, err
	}
	if err := r.Verify(acct.PubKey); err != nil {
		return nil, fail(CodeSignature, "receipt not signed by the provider %s: %v", r.Provider, errors.Unwrap(err))
	}
	if m.Material != nil {
		// A signed reveal in the material is the provider's word: it must be its signature.
		if m.Material.VerifyReveal(r, acct.PubKey) != nil {
			return nil, fail(CodeSignature, "reveal in the material not signed by the provider %s", r.Provider)
		}
	}
	dk := keyEvidenceByReceipt(r.Provider, r.RequestID)
	if raw, ok := x.o.get(dk); ok {
		return nil, fail(CodeInvalid, "evidence %s already filed for request %q of provider %s", raw, r.RequestID, r.Provider)
	}
	if m.Bond < p.EvidenceMinBond {
		return nil, fail(CodeInvalid, "bond %dumyc below the minimum %dumyc", m.Bond, p.EvidenceMinBond)
	}
	if err := x.l.debit(x.o, x.sender, m.Bond, "the evidence bond"); err != nil {
		return nil, err
	}
	c, _, err := getJSON[Counters](x.o, keyCounters)
	if err != nil {
		return nil, err
	}
	c.Evidence++
	if err := putJSON(x.o, keyCounters, c); err != nil {
		return nil, err
	}
	ev := Evidence{
		ID: c.Evidence, Submitter: x.sender, Provider: r.Provider, RequestID: r.RequestID, Receipt: r,
		Summary: m.Summary, Material: m.Material, Bond: m.Bond, Height: x.height, Deadline: x.height + int64(p.EvidenceVoteBlocks),
		Votes: []EvidenceVote{}, Status: EvidenceOpen,
	}
	if err := putJSON(x.o, dk, ev.ID); err != nil {
		return nil, err
	}
	st, err := x.l.verifierStats(x.o, x.sender)
	if err != nil {
		return nil, err
	}
	st.EvidenceFiled++
	if err := putJSON(x.o, keyVerifierStats(x.sender), st); err != nil {
		return nil, err
	}
	events := []Event{{Type: "submit_evidence", Attrs: []Attr{
		{"id", u64(ev.ID)}, {"submitter", x.sender}, {"provider", r.Provider}, {"request_id", r.RequestID},
		{"verdict", m.Summary.Verdict}, {"bond", u64(m.Bond)}, {"deadline", i64(ev.Deadline)},
	}}}
	evs, err := x.l.tallyEvidence(x.o, &ev, x.height, false)
	if err != nil {
		return nil, err
	}
	if ev.Status == EvidenceOpen {
		q, _, err := getJSON[[]uint64](x.o, keyEvidenceQueue(ev.Deadline))
		if err != nil {
			return nil, err
		}
		if err := putJSON(x.o, keyEvidenceQueue(ev.Deadline), append(q, ev.ID)); err != nil {
			return nil, err
		}
	}
	if err := putJSON(x.o, keyEvidence(ev.ID), ev); err != nil {
		return nil, err
	}
	return append(events, evs...), nil
}

func (x *msgCtx) voteEvidence(m tx.VoteEvidence) ([]Event, error) {
	if _, _, err := x.activeVerifier(); err != nil {
		return nil, err
	}
	ev, ok, err := getJSON[Evidence](x.o, keyEvidence(m.ID))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fail(CodeNotFound, "evidence %d not found", m.ID)
	}
	if ev.Status != EvidenceOpen {
		return nil, fail(CodeInvalid, "evidence %d is %s", m.ID, ev.Status)
	}
	if x.height > ev.Deadline {
		return nil, fail(CodeInvalid, "the vote on evidence %d ended at height %d", m.ID, ev.Deadline)
	}
	if ev.Submitter == x.sender {
		return nil, fail(CodeInvalid, "the submitter of evidence %d counts as guilty and cannot vote", m.ID)
	}
	for _, v := range ev.Votes {
		if v.Voter == x.sender {
			return nil, fail(CodeInvalid, "%s already voted on evidence %d", x.sender, m.ID)
		}
	}
	ev.Votes = append(ev.Votes, EvidenceVote{Voter: x.sender, Guilty: m.Guilty, Height: x.height})
	events := []Event{{Type: "vote_evidence", Attrs: []Attr{
		{"id", u64(m.ID)}, {"voter", x.sender}, {"guilty", fmt.Sprint(m.Guilty)},
	}}}
	evs, err := x.l.tallyEvidence(x.o, &ev, x.height, false)
	if err != nil {
		return nil, err
	}
	if err := putJSON(x.o, keyEvidence(ev.ID), ev); err != nil {
		return nil, err
	}
	return append(events, evs...), nil
}

// reporter is a verifier counted on the guilty side of evidence.
type reporter struct {
	addr  string
	stake uint64
}

// activeVerifiers returns the active verifiers (sorted by address) as of state g.
func (l *Ledger) activeVerifiers(g getter) ([]Verifier, error) {
	ep, err := l.epoch(g)
	if err != nil {
		return nil, err
	}
	var out []Verifier
	for _, kv := range scanPrefix(g, "verif/") {
		var v Verifier
		if err := json.Unmarshal(kv.val, &v); err != nil {
			return nil, fail(CodeInternal, "corrupt state at %s: %v", kv.key, err)
		}
		if active(v.Stake, l.params.MinVerifierStake, v.JailedUntilEpoch, ep.Number) {
			out = append(out, v)
		}
	}
	return out, nil
}

// tallyEvidence resolves ev as guilty when the submitter and the guilty voters hold ≥ 2/3 of
// the active verifier stake; at the deadline (final) it rejects it otherwise. The caller
// stores ev.
func (l *Ledger) tallyEvidence(o *overlay, ev *Evidence, h int64, final bool) ([]Event, error) {
	vs, err := l.activeVerifiers(o)
	if err != nil {
		return nil, err
	}
	guiltyVoter := map[string]bool{ev.Submitter: true}
	for _, v := range ev.Votes {
		if v.Guilty {
			guiltyVoter[v.Voter] = true
		}
	}
	var total, guilty uint64
	var reps []reporter
	for _, v := range vs {
		total += v.Stake
		if guiltyVoter[v.Address] {
			guilty += v.Stake
			reps = append(reps, reporter{v.Address, v.Stake})
		}
	}
	if total > 0 && guilty > 0 && geq2of3(guilty, total) {
		return l.resolveGuilty(o, ev, h, reps, guilty, total)
	}
	if !final {
		return nil, nil
	}
	// Rejected: the bond goes to the reward pool.
	ep, err := l.epoch(o)
	if err != nil {
		return nil, err
	}
	if ep.RewardPool, err = add(ep.RewardPool, ev.Bond, "reward pool"); err != nil {
		return nil, err
	}
	if err := putJSON(o, keyEpoch, ep); err != nil {
		return nil, err
	}
	ev.Status, ev.ResolvedHeight, ev.GuiltyStake, ev.TotalStake, ev.BondToPool = EvidenceRejected, h, guilty, total, ev.Bond
	st, err := l.verifierStats(o, ev.Submitter)
	if err != nil {
		return nil, err
	}
	st.EvidenceRejected++
	if err := putJSON(o, keyVerifierStats(ev.Submitter), st); err != nil {
		return nil, err
	}
	return []Event{{Type: "evidence_rejected", Attrs: []Attr{
		{"id", u64(ev.ID)}, {"provider", ev.Provider}, {"guilty_stake", u64(guilty)}, {"total_stake", u64(total)},
		{"bond_to_pool", u64(ev.Bond)},
	}}}, nil
}

func (l *Ledger) resolveGuilty(o *overlay, ev *Evidence, h int64, reps []reporter, guilty, total uint64) ([]Event, error) {
	p := l.vparams()
	reason := fmt.Sprintf("evidence %d: %s on request %.100q", ev.ID, ev.Summary.Verdict, ev.RequestID)
	if len(reason) > MaxReasonLen {
		reason = reason[:MaxReasonLen]
	}
	slashed, seq, err := l.slashIn(o, h, ev.Provider, tx.RoleProvider, p.SlashFractionBps, reason)
	if err != nil {
		return nil, err
	}
	reward := mulDiv(slashed, p.EvidenceRewardBps, 10_000)
	var paid uint64
	for _, r := range reps {
		a := mulDiv(reward, r.stake, guilty)
		if a == 0 {
			continue
		}
		if err := l.credit(o, r.addr, a); err != nil {
			return nil, err
		}
		paid += a
		st, err := l.verifierStats(o, r.addr)
		if err != nil {
			return nil, err
		}
		st.EvidenceRewards += a
		if err := putJSON(o, keyVerifierStats(r.addr), st); err != nil {
			return nil, err
		}
	}
	// The paid part of the slash stays in circulation: only the rest counts as slashed.
	sup, err := l.supply(o)
	if err != nil {
		return nil, err
	}
	sup.Slashed -= paid
	if err := putJSON(o, keySupply, sup); err != nil {
		return nil, err
	}
	rec, _, err := getJSON[SlashRecord](o, keySlash(seq))
	if err != nil {
		return nil, err
	}
	rec.Rewarded = paid
	if err := putJSON(o, keySlash(seq), rec); err != nil {
		return nil, err
	}
	if err := l.credit(o, ev.Submitter, ev.Bond); err != nil { // the bond comes back
		return nil, err
	}
	rep, err := l.reputation(o, ev.Provider)
	if err != nil {
		return nil, err
	}
	rep.EvidenceAgainst++
	if err := putJSON(o, keyReputation(ev.Provider), rep); err != nil {
		return nil, err
	}
	st, err := l.verifierStats(o, ev.Submitter)
	if err != nil {
		return nil, err
	}
	st.EvidenceUpheld++
	if err := putJSON(o, keyVerifierStats(ev.Submitter), st); err != nil {
		return nil, err
	}
	ev.Status, ev.ResolvedHeight, ev.GuiltyStake, ev.TotalStake = EvidenceGuilty, h, guilty, total
	ev.Slashed, ev.Rewarded, ev.Burned = slashed, paid, slashed-paid
	return []Event{{Type: "evidence_guilty", Attrs: []Attr{
		{"id", u64(ev.ID)}, {"provider", ev.Provider}, {"guilty_stake", u64(guilty)}, {"total_stake", u64(total)},
		{"slashed", u64(slashed)}, {"rewarded", u64(paid)}, {"burned", u64(slashed - paid)},
	}}}, nil
}

// closeEvidence resolves the evidence whose vote ends at height h.
func (l *Ledger) closeEvidence(o *overlay, h int64) ([]Event, error) {
	q, ok, err := getJSON[[]uint64](o, keyEvidenceQueue(h))
	if err != nil || !ok {
		return nil, err
	}
	var events []Event
	for _, id := range q {
		ev, ok, err := getJSON[Evidence](o, keyEvidence(id))
		if err != nil {
			return nil, err
		}
		if !ok || ev.Status != EvidenceOpen {
			continue
		}
		evs, err := l.tallyEvidence(o, &ev, h, true)
		if err != nil {
			return nil, err
		}
		if err := putJSON(o, keyEvidence(id), ev); err != nil {
			return nil, err
		}
		events = append(events, evs...)
	}
	o.del(keyEvidenceQueue(h))
	return events, nil
}
