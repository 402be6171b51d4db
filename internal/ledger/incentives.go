package ledger

import (
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/mycel-network/mycel/internal/tx"
)

// epochIncentives runs at every epoch boundary, after the emission: it aggregates the ended
// epoch's capacity records, runs Yuma consensus on the weights of the epoch before it (revealed
// during the ended epoch) and pays the pool out, updates the providers' reputations and deletes
// the per-epoch records no longer needed.
func (l *Ledger) epochIncentives(o *overlay, h int64) ([]Event, error) {
	if h <= 0 || uint64(h)%l.params.EpochLength != 0 {
		return nil, nil
	}
	ep, err := l.epoch(o)
	if err != nil {
		return nil, err
	}
	if ep.Number == 0 || ep.LastHeight != h {
		return nil, nil // the emission step failed; nothing ended
	}
	ended := ep.Number - 1
	var events []Event
	evs, err := l.aggregateCapacity(o, ended)
	if err != nil {
		return nil, err
	}
	events = append(events, evs...)
	if ended >= 1 {
		evs, err := l.distribute(o, h, ended-1)
		if err != nil {
			return nil, err
		}
		events = append(events, evs...)
		for _, prefix := range []string{"aseed/", "wcommit/", "wreveal/", "areport/", "aleaves/"} {
			for _, kv := range scanPrefix(o, prefix+ep20(ended-1)+"/") {
				o.del(kv.key)
			}
		}
	}
	if err := l.updateReputations(o, ended); err != nil {
		return nil, err
	}
	return events, nil
}

func decodeAll[T any](kvs []kvPair) ([]T, error) {
	out := make([]T, len(kvs))
	for i, kv := range kvs {
		if err := json.Unmarshal(kv.val, &out[i]); err != nil {
			return nil, fail(CodeInternal, "corrupt state at %s: %v", kv.key, err)
		}
	}
	return out, nil
}

// auditCompliance returns, for epoch e, whether verifier v made an audit claim for every leaf
// its revealed seed selects in every binding anchor (one whose leaves are on the ledger). An
// anchor sent by a registered verifier holds that verifier's own shopper receipts: it binds
// only its anchorer, since no other verifier holds those requests to re-check.
func (l *Ledger) auditCompliance(o *overlay, e uint64) (func(v string) bool, error) {
	type binding struct {
		anchor string
		chunk  uint64
		leaves []tx.AnchorLeaf
	}
	var anchors []binding
	prefix := "aleaves/" + ep20(e) + "/"
	for _, kv := range scanPrefix(o, prefix) {
		var ls []tx.AnchorLeaf
		if err := json.Unmarshal(kv.val, &ls); err != nil {
			return nil, fail(CodeInternal, "corrupt state at %s: %v", kv.key, err)
		}
		anchor, chunk, _ := strings.Cut(strings.TrimPrefix(kv.key, prefix), "/") // <anchor>/<chunk>
		c, err := strconv.ParseUint(chunk, 10, 64)
		if err != nil {
			return nil, fail(CodeInternal, "corrupt state key %s", kv.key)
		}
		anchors = append(anchors, binding{anchor, c, ls})
	}
	prob := map[string]uint64{}
	probOf := func(p string) (uint64, error) {
		if b, ok := prob[p]; ok {
			return b, nil
		}
		var b uint64 // unregistered providers are never demanded
		if _, ok := o.get(keyProvider(p)); ok {
			r, err := l.reputation(o, p)
			if err != nil {
				return 0, err
			}
			b = r.PrevAuditBps
		}
		prob[p] = b
		return b, nil
	}
	var ierr error
	check := func(v string) bool {
		if len(anchors) == 0 {
			return true
		}
		s, ok, err := getJSON[AuditSeed](o, keyAuditSeed(e, v))
		if err != nil {
			ierr = err
		}
		if !ok || s.Seed == "" {
			return false
		}
		seed, _ := hex.DecodeString(s.Seed)
		for _, a := range anchors {
			if a.anchor != v {
				if _, own := o.get(keyVerifier(a.anchor)); own {
					continue
				}
			}
			rep, ok, err := getJSON[AuditReport](o, keyAuditReport(e, a.anchor, a.chunk, v))
			if err != nil {
				ierr = err
			}
			if !ok {
				return false
			}
			done := make(map[uint32]bool, len(rep.Audited))
			for _, i := range rep.Audited {
				done[i] = true
			}
			for i, leaf := range a.leaves {
				b, err := probOf(leaf.Provider)
				if err != nil {
					ierr = err
					return false
				}
				if !done[uint32(i)] && AuditSelected(seed, leaf.Provider, leaf.RequestID, b) {
					return false
				}
			}
		}
		return true
	}
	return func(v string) bool {
		ok := check(v)
		return ok && ierr == nil
	}, nil
}

// distribute runs Yuma consensus on the weights revealed for epoch e and pays the reward pool
// to providers (by rank) and audit-compliant active verifiers (by dividend). Rounding
// remainders and shares without recipients stay in the pool.
func (l *Ledger) distribute(o *overlay, h int64, e uint64) ([]Event, error) {
	p := l.vparams()
	ep, err := l.epoch(o)
	if err != nil {
		return nil, err
	}
	reveals, err := decodeAll[WeightReveal](scanPrefix(o, "wreveal/"+ep20(e)+"/"))
	if err != nil {
		return nil, err
	}
	activeV, err := l.activeVerifiers(o)
	if err != nil {
		return nil, err
	}
	stakeOf := map[string]uint64{}
	for _, v := range activeV {
		stakeOf[v.Address] = v.Stake
	}
	revealed := map[string][]tx.ProviderWeight{}
	for _, r := range reveals {
		if _, ok := stakeOf[r.Verifier]; ok {
			revealed[r.Verifier] = r.Weights
		}
	}
	if len(revealed) == 0 {
		return nil, nil // no consensus this epoch: the pool carries over
	}
	// Providers: the eligible (active) ones, sorted.
	provs, err := decodeAll[Provider](scanPrefix(o, "prov/"))
	if err != nil {
		return nil, err
	}
	var pcols []string
	col := map[string]int{}
	for _, pr := range provs {
		if active(pr.Stake, l.params.MinProviderStake, pr.JailedUntilEpoch, ep.Number-1) { // active in the ended epoch
			col[pr.Address] = len(pcols)
			pcols = append(pcols, pr.Address)
		}
	}
	// Verifiers: revealers and bond holders that are still registered, sorted.
	bondsOf := map[string][]BondEntry{}
	for _, kv := range scanPrefix(o, "ybond/") {
		var bs []BondEntry
		if err := json.Unmarshal(kv.val, &bs); err != nil {
			return nil, fail(CodeInternal, "corrupt state at %s: %v", kv.key, err)
		}
		bondsOf[strings.TrimPrefix(kv.key, "ybond/")] = bs
	}
	var vrows []string
	for v := range revealed {
		vrows = append(vrows, v)
	}
	for v := range bondsOf {
		if _, ok := revealed[v]; ok {
			continue
		}
		if _, ok := o.get(keyVerifier(v)); ok {
			vrows = append(vrows, v)
		} else {
			o.del(keyBonds(v))
		}
	}
	slices.Sort(vrows)
	in := yumaInput{AlphaBps: p.BondsAlphaBps, ClipLowBps: p.ClipLowBps,
		Stakes: make([]uint64, len(vrows)), Weights: make([][]uint64, len(vrows)), Bonds: make([][]uint64, len(vrows))}
	for i, v := range vrows {
		in.Weights[i] = make([]uint64, len(pcols))
		in.Bonds[i] = make([]uint64, len(pcols))
		if ws, ok := revealed[v]; ok {
			in.Stakes[i] = stakeOf[v]
			for _, w := range ws {
				if j, ok := col[w.Provider]; ok {
					in.Weights[i][j] = uint64(w.Weight)
				}
			}
		}
		for _, b := range bondsOf[v] {
			if j, ok := col[b.Provider]; ok {
				in.Bonds[i][j] = b.Bond
			}
		}
	}
	out := yuma(in)
	for i, v := range vrows {
		var bs []BondEntry
		for j, pr := range pcols {
			if out.Bonds[i][j] > 0 {
				bs = append(bs, BondEntry{Provider: pr, Bond: out.Bonds[i][j]})
			}
		}
		if len(bs) == 0 {
			o.del(keyBonds(v))
		} else if err := putJSON(o, keyBonds(v), bs); err != nil {
			return nil, err
		}
	}
	compliant, err := l.auditCompliance(o, e)
	if err != nil {
		return nil, err
	}
	pool := ep.RewardPool
	rec := RewardRecord{Epoch: e, Height: h, Pool: pool, Providers: []ProviderReward{}, Verifiers: []VerifierReward{}}
	provShare := mulDiv(pool, p.ProviderShareBps, 10_000)
	verShare := pool - provShare
	capacity := make([]uint64, len(pcols))
	for j, pr := range pcols {
		c, ok, err := getJSON[Capacity](o, keyCapacity(pr))
		if err != nil {
			return nil, err
		}
		if ok {
			capacity[j] = c.Total()
		}
	}
	amounts := providerPayouts(provShare, out.Rank, capacity)
	for j, pr := range pcols {
		amt := amounts[j]
		if amt == 0 && out.Incentive[j] == 0 {
			continue
		}
		rec.Providers = append(rec.Providers, ProviderReward{Provider: pr, Consensus: out.Consensus[j], Incentive: out.Incentive[j],
			Capacity: capacity[j], Amount: amt})
		rec.ToProviders += amt
	}
	eligible := make([]bool, len(vrows))
	var divSum uint64
	for i, v := range vrows {
		_, isActive := stakeOf[v]
		eligible[i] = isActive && compliant(v)
		if eligible[i] {
			divSum += out.Dividends[i]
		}
	}
	for i, v := range vrows {
		vr := VerifierReward{Verifier: v, Stake: in.Stakes[i], Trust: out.Trust[i], Dividend: out.Dividends[i], Eligible: eligible[i]}
		if eligible[i] {
			vr.Amount = mulDiv(verShare, out.Dividends[i], divSum)
			rec.ToVerifiers += vr.Amount
		}
		rec.Verifiers = append(rec.Verifiers, vr)
	}
	rec.Carried = pool - rec.ToProviders - rec.ToVerifiers
	for _, pr := range rec.Providers {
		if pr.Amount == 0 {
			continue
		}
		if err := l.credit(o, pr.Provider, pr.Amount); err != nil {
			return nil, err
		}
		r, err := l.reputation(o, pr.Provider)
		if err != nil {
			return nil, err
		}
		r.Earnings += pr.Amount
		if err := putJSON(o, keyReputation(pr.Provider), r); err != nil {
			return nil, err
		}
	}
	for _, vr := range rec.Verifiers {
		_, isActive := stakeOf[vr.Verifier]
		if vr.Amount == 0 && (vr.Eligible || !isActive) {
			continue
		}
		st, err := l.verifierStats(o, vr.Verifier)
		if err != nil {
			return nil, err
		}
		if !vr.Eligible {
			st.SkippedEpochs++
		}
		if vr.Amount > 0 {
			if err := l.credit(o, vr.Verifier, vr.Amount); err != nil {
				return nil, err
			}
			st.Dividends += vr.Amount
		}
		if err := putJSON(o, keyVerifierStats(vr.Verifier), st); err != nil {
			return nil, err
		}
	}
	ep.RewardPool = rec.Carried
	if err := putJSON(o, keyEpoch, ep); err != nil {
		return nil, err
	}
	if err := putJSON(o, keyRewards(e), rec); err != nil {
		return nil, err
	}
	return []Event{{Type: "rewards", Attrs: []Attr{
		{"epoch", u64(e)}, {"pool", u64(pool)}, {"to_providers", u64(rec.ToProviders)},
		{"to_verifiers", u64(rec.ToVerifiers)}, {"carried", u64(rec.Carried)},
	}}}, nil
}

// providerPayouts splits the providers' share pp of the pool: provider j gets floor(pp·R_j/ΣR),
// capped by its share of the proven capacity, floor(pp·K_j/ΣK), when any provider has proven
// capacity (ΣK > 0): a provider earns no more than the part of the network's capacity it has
// shown, and one without a capacity proof earns nothing while others have one. With no capacity
// proved at all the split is by rank alone. What the caps leave stays in the pool.
func providerPayouts(pp uint64, rank, capacity []uint64) []uint64 {
	var rankSum, capSum uint64
	for j := range rank {
		rankSum = satAdd(rankSum, rank[j])
		capSum = satAdd(capSum, capacity[j])
	}
	out := make([]uint64, len(rank))
	for j := range rank {
		out[j] = mulDiv(pp, rank[j], rankSum)
		if capSum > 0 {
			out[j] = min(out[j], mulDiv(pp, capacity[j], capSum))
		}
	}
	return out
}

func satAdd(a, b uint64) uint64 {
	if a+b < a {
		return 1<<64 - 1
	}
	return a + b
}

// updateReputations closes epoch e for every provider: a clean epoch (active, at least one
// audit passed, none failed, not slashed) counts; the audit probability moves one epoch on.
func (l *Ledger) updateReputations(o *overlay, e uint64) error {
	p := l.vparams()
	provs, err := decodeAll[Provider](scanPrefix(o, "prov/"))
	if err != nil {
		return err
	}
	for _, pr := range provs {
		r, err := l.reputation(o, pr.Address)
		if err != nil {
			return err
		}
		before := r
		if active(pr.Stake, l.params.MinProviderStake, pr.JailedUntilEpoch, e) &&
			r.EpochPassed > 0 && r.EpochFailed == 0 && !r.EpochSlashed {
			r.CleanEpochs++
		}
		r.PrevAuditBps = r.AuditBps
		r.AuditBps = AuditProbabilityBps(r.CleanEpochs, p.AuditFloorBps, p.AuditCleanEpochs)
		r.EpochPassed, r.EpochFailed, r.EpochSlashed = 0, 0, false
		if r == before {
			continue
		}
		if err := putJSON(o, keyReputation(pr.Address), r); err != nil {
			return err
		}
	}
	return nil
}

// aggregateCapacity turns epoch e's capacity records into proven capacities: per provider and
// model, the stake-weighted (lower) median over the records of verifiers active now.
func (l *Ledger) aggregateCapacity(o *overlay, e uint64) ([]Event, error) {
	prefix := "capr/" + ep20(e) + "/"
	kvs := scanPrefix(o, prefix)
	if len(kvs) == 0 {
		return nil, nil
	}
	activeV, err := l.activeVerifiers(o)
	if err != nil {
		return nil, err
	}
	stakeOf := map[string]uint64{}
	for _, v := range activeV {
		stakeOf[v.Address] = v.Stake
	}
	type rec struct{ v, s uint64 }
	caps := map[string]*Capacity{}
	var order []string
	var events []Event
	for i := 0; i < len(kvs); {
		// key: capr/<e>/<provider>/<model>/<verifier>
		parts := strings.Split(strings.TrimPrefix(kvs[i].key, prefix), "/")
		prov, model := parts[0], parts[1]
		group := prefix + prov + "/" + model + "/"
		var rs []rec
		for ; i < len(kvs) && strings.HasPrefix(kvs[i].key, group); i++ {
			var cr CapacityRecord
			if err := json.Unmarshal(kvs[i].val, &cr); err != nil {
				return nil, fail(CodeInternal, "corrupt state at %s: %v", kvs[i].key, err)
			}
			o.del(kvs[i].key)
			if s := stakeOf[cr.Verifier]; s > 0 {
				rs = append(rs, rec{cr.TokensPerSecMilli, s})
			}
		}
		if len(rs) == 0 {
			continue
		}
		slices.SortStableFunc(rs, func(a, b rec) int {
			switch {
			case a.v < b.v:
				return -1
			case a.v > b.v:
				return 1
			}
			return 0
		})
		var total, acc uint64
		for _, r := range rs {
			total += r.s
		}
		med := rs[len(rs)-1].v
		for _, r := range rs {
			acc += r.s
			if acc >= total-acc {
				med = r.v
				break
			}
		}
		c := caps[prov]
		if c == nil {
			c = &Capacity{Provider: prov, Epoch: e, Models: []ModelCapacity{}}
			caps[prov] = c
			order = append(order, prov)
		}
		c.Models = append(c.Models, ModelCapacity{ModelID: model, TokensPerSecMilli: med, Records: uint64(len(rs))})
		events = append(events, Event{Type: "capacity", Attrs: []Attr{
			{"provider", prov}, {"model_id", model}, {"tokens_per_sec_milli", u64(med)}, {"records", u64(uint64(len(rs)))},
		}})
	}
	for _, prov := range order {
		if err := putJSON(o, keyCapacity(prov), caps[prov]); err != nil {
			return nil, err
		}
	}
	return events, nil
}
