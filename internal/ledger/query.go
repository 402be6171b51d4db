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
}

// VerifierView is a verifier as Query returns it.
type VerifierView struct {
	Verifier
	Active bool `json:"active"`
	Jailed bool `json:"jailed"`
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
// provider address to filter by), "channel/<id>", "slashes", "params", "supply", "epoch".
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
			out[i] = l.providerView(p, ep.Number)
		}
		return out, nil
	case kind == "provider" && hasArg:
		p, err := one[Provider](s, keyProvider(arg), "provider "+arg)
		if err != nil {
			return nil, err
		}
		return l.providerView(p, ep.Number), nil
	case kind == "verifiers" && !hasArg:
		vs, err := list[Verifier](s, "verif/", nil)
		if err != nil {
			return nil, err
		}
		out := make([]VerifierView, len(vs))
		for i, v := range vs {
			out[i] = l.verifierView(v, ep.Number)
		}
		return out, nil
	case kind == "verifier" && hasArg:
		v, err := one[Verifier](s, keyVerifier(arg), "verifier "+arg)
		if err != nil {
			return nil, err
		}
		return l.verifierView(v, ep.Number), nil
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

func (l *Ledger) providerView(p Provider, epoch uint64) ProviderView {
	return ProviderView{
		Provider: p,
		Active:   active(p.Stake, l.params.MinProviderStake, p.JailedUntilEpoch, epoch),
		Jailed:   epoch < p.JailedUntilEpoch,
	}
}

func (l *Ledger) verifierView(v Verifier, epoch uint64) VerifierView {
	return VerifierView{
		Verifier: v,
		Active:   active(v.Stake, l.params.MinVerifierStake, v.JailedUntilEpoch, epoch),
		Jailed:   epoch < v.JailedUntilEpoch,
	}
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
