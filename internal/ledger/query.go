package ledger

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/mycel-network/mycel/internal/address"
)

// ProviderView is a provider as Query returns it.
type ProviderView struct {
	Provider
	Active bool `json:"active"`
	Jailed bool `json:"jailed"`
	// Verification record; absent for a provider nothing has happened to yet.
	Reputation       *Reputation `json:"reputation,omitempty"`
	AuditPassRateBps *uint64     `json:"audit_pass_rate_bps,omitempty"` // passed / (passed + failed)
	ProvenCapacity   *Capacity   `json:"proven_capacity,omitempty"`
	Earnings         uint64      `json:"earnings,omitempty"` // incentive paid, umyc
}

// VerifierView is a verifier as Query returns it.
type VerifierView struct {
	Verifier
	Active bool `json:"active"`
	Jailed bool `json:"jailed"`
	// Audits, evidence filed and dividends; absent for a verifier that has done nothing yet.
	Stats *VerifierStats `json:"stats,omitempty"`
}

// SupplyView is the supply as Query returns it; Total = Genesis + Minted − Slashed − Burned.
type SupplyView struct {
	Supply
	Total uint64 `json:"total"`
}

// EpochView is the epoch as Query returns it.
type EpochView struct {
	Epoch
	Height          int64 `json:"height"` // last committed height
	NextEpochHeight int64 `json:"next_epoch_height"`
}

// Query answers a read of the last committed state with one JSON object or array. Paths:
// "account/<addr>" (a zero account if unknown), "models", "model/<id>", "providers",
// "provider/<addr>", "verifiers", "verifier/<addr>", "channels" (data: optional consumer or
// provider address to filter by), "channel/<id>", "slashes", "params", "supply", "epoch",
// and for verification and incentives: "anchors/<addr>", "evidence", "evidence/<id>",
// "reputation/<provider>", "weights" (revealed weight vectors not yet consumed), "bonds",
// "rewards/<epoch>" (Yuma result on that epoch's weights), "capacity/<provider>",
// "audit-seeds".
// A leading "/" is ignored. Errors wrap ErrNotFound or ErrBadQuery.
func (l *Ledger) Query(path string, data []byte) ([]byte, error) {
	v, err := l.query(strings.TrimPrefix(path, "/"), data)
	if err != nil {
		return nil, fmt.Errorf("query %.100q: %w", path, err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("query %.100q: %w", path, err)
	}
	return out, nil
}

func (l *Ledger) query(path string, data []byte) (any, error) {
	if !l.initialized {
		return nil, fmt.Errorf("ledger not initialised: %w", ErrState)
	}
	s := l.committed
	ep, err := l.epoch(s)
	if err != nil {
		return nil, err
	}
	kind, arg, hasArg := strings.Cut(path, "/")
	switch {
	case kind == "account" && hasArg:
		if err := address.Validate(arg); err != nil {
			return nil, fmt.Errorf("%v: %w", err, ErrBadQuery)
		}
		return l.account(s, arg)
	case kind == "models" && !hasArg:
		return list[Model](s, "model/", nil)
	case kind == "model" && hasArg:
		return one[Model](s, keyModel(arg), "model "+arg)
	case kind == "providers" && !hasArg:
		ps, err := list[Provider](s, "prov/", nil)
		if err != nil {
			return nil, err
		}
		out := make([]ProviderView, len(ps))
		for i, p := range ps {
			if out[i], err = l.providerView(s, p, ep.Number); err != nil {
				return nil, err
			}
		}
		return out, nil
	case kind == "provider" && hasArg:
		p, err := one[Provider](s, keyProvider(arg), "provider "+arg)
		if err != nil {
			return nil, err
		}
		return l.providerView(s, p, ep.Number)
	case kind == "verifiers" && !hasArg:
		vs, err := list[Verifier](s, "verif/", nil)
		if err != nil {
			return nil, err
		}
		out := make([]VerifierView, len(vs))
		for i, v := range vs {
			if out[i], err = l.verifierView(s, v, ep.Number); err != nil {
				return nil, err
			}
		}
		return out, nil
	case kind == "verifier" && hasArg:
		v, err := one[Verifier](s, keyVerifier(arg), "verifier "+arg)
		if err != nil {
			return nil, err
		}
		return l.verifierView(s, v, ep.Number)
	case kind == "channels" && !hasArg:
		filter := strings.TrimSpace(string(data))
		if filter == "" {
			return list[Channel](s, "chan/", nil)
		}
		if err := address.Validate(filter); err != nil {
			return nil, fmt.Errorf("channels filter: %v: %w", err, ErrBadQuery)
		}
		return list(s, "chan/", func(c Channel) bool { return c.Consumer == filter || c.Provider == filter })
	case kind == "channel" && hasArg:
		id, err := strconv.ParseUint(arg, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("channel id %.30q: %w", arg, ErrBadQuery)
		}
		return one[Channel](s, keyChannel(id), "channel "+arg)
	case kind == "anchors" && hasArg:
		if err := address.Validate(arg); err != nil {
			return nil, fmt.Errorf("%v: %w", err, ErrBadQuery)
		}
		return list[Anchor](s, "anchor/"+arg+"/", nil)
	case kind == "evidence" && !hasArg:
		return list[Evidence](s, "evid/", nil)
	case kind == "evidence" && hasArg:
		id, err := strconv.ParseUint(arg, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("evidence id %.30q: %w", arg, ErrBadQuery)
		}
		return one[Evidence](s, keyEvidence(id), "evidence "+arg)
	case kind == "reputation" && hasArg:
		if err := address.Validate(arg); err != nil {
			return nil, fmt.Errorf("%v: %w", err, ErrBadQuery)
		}
		if _, ok := s.get(keyProvider(arg)); !ok {
			return nil, fmt.Errorf("provider %s: %w", arg, ErrNotFound)
		}
		return l.reputation(s, arg)
	case kind == "weights" && !hasArg:
		return list[WeightReveal](s, "wreveal/", nil)
	case kind == "bonds" && !hasArg:
		return l.bondsView(s)
	case kind == "rewards" && hasArg:
		e, err := strconv.ParseUint(arg, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("epoch %.30q: %w", arg, ErrBadQuery)
		}
		return one[RewardRecord](s, keyRewards(e), "rewards of epoch "+arg)
	case kind == "capacity" && hasArg:
		return one[Capacity](s, keyCapacity(arg), "capacity of "+arg)
	case kind == "audit-seeds" && !hasArg:
		return list[AuditSeed](s, "aseed/", nil)
	case kind == "slashes" && !hasArg:
		return list[SlashRecord](s, "slash/", nil)
	case path == "params":
		return l.params, nil
	case path == "supply":
		sup, err := l.supply(s)
		if err != nil {
			return nil, err
		}
		return SupplyView{Supply: sup, Total: sup.Genesis + sup.Minted - sup.Slashed - sup.Burned}, nil
	case path == "epoch":
		next := ep.LastHeight + int64(l.params.EpochLength)
		next -= next % int64(l.params.EpochLength)
		return EpochView{Epoch: ep, Height: l.height, NextEpochHeight: next}, nil
	}
	return nil, fmt.Errorf("unknown path: %w", ErrBadQuery)
}

func (l *Ledger) providerView(s *store, p Provider, epoch uint64) (ProviderView, error) {
	pv := ProviderView{
		Provider: p,
		Active:   active(p.Stake, l.params.MinProviderStake, p.JailedUntilEpoch, epoch),
		Jailed:   epoch < p.JailedUntilEpoch,
	}
	r, ok, err := getJSON[Reputation](s, keyReputation(p.Address))
	if err != nil {
		return pv, err
	}
	if ok {
		pv.Reputation = &r
		pv.Earnings = r.Earnings
		if n := r.AuditsPassed + r.AuditsFailed; n > 0 {
			rate := mulDiv(r.AuditsPassed, 10_000, n)
			pv.AuditPassRateBps = &rate
		}
	}
	c, ok, err := getJSON[Capacity](s, keyCapacity(p.Address))
	if err != nil {
		return pv, err
	}
	if ok {
		pv.ProvenCapacity = &c
	}
	return pv, nil
}

func (l *Ledger) verifierView(s *store, v Verifier, epoch uint64) (VerifierView, error) {
	vv := VerifierView{
		Verifier: v,
		Active:   active(v.Stake, l.params.MinVerifierStake, v.JailedUntilEpoch, epoch),
		Jailed:   epoch < v.JailedUntilEpoch,
	}
	st, ok, err := getJSON[VerifierStats](s, keyVerifierStats(v.Address))
	if err != nil {
		return vv, err
	}
	if ok {
		vv.Stats = &st
	}
	return vv, nil
}

func one[T any](s *store, key, what string) (T, error) {
	v, ok, err := getJSON[T](s, key)
	if err != nil {
		return v, err
	}
	if !ok {
		return v, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return v, nil
}

// list decodes every record under prefix in key order, keeping those keep accepts (nil: all).
// It returns an empty, non-nil slice when there are none.
func list[T any](s *store, prefix string, keep func(T) bool) ([]T, error) {
	out := []T{}
	var err error
	s.scan(prefix, func(key string, val []byte) bool {
		var v T
		if e := json.Unmarshal(val, &v); e != nil {
			err = fail(CodeInternal, "corrupt state at %s: %v", key, e)
			return false
		}
		if keep == nil || keep(v) {
			out = append(out, v)
		}
		return true
	})
	return out, err
}

// BondsView is one verifier's Yuma bonds.
type BondsView struct {
	Verifier string      `json:"verifier"`
	Bonds    []BondEntry `json:"bonds"`
}

func (l *Ledger) bondsView(s *store) ([]BondsView, error) {
	out := []BondsView{}
	for _, kv := range scanPrefix(s, "ybond/") {
		var bs []BondEntry
		if err := json.Unmarshal(kv.val, &bs); err != nil {
			return nil, fail(CodeInternal, "corrupt state at %s: %v", kv.key, err)
		}
		out = append(out, BondsView{Verifier: strings.TrimPrefix(kv.key, "ybond/"), Bonds: bs})
	}
	return out, nil
}
