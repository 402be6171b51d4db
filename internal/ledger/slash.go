package ledger

import (
	"fmt"
	"math/bits"

	"github.com/mycel-network/mycel/internal/tx"
)

// MaxReasonLen bounds the reason recorded with a slash.
const MaxReasonLen = 256

// Slash removes fractionBps/10000 (floor, per entry) of addr's bonded and unbonding stake in
// role ("provider" or "verifier"), burns it from the supply (recorded as slashed), records
// {height, address, role, amount, reason} and jails addr in that role for params.JailEpochs
// epochs. It must be called inside a block (between BeginBlock and Commit) and returns the
// amount slashed. Who may trigger it is decided elsewhere (verifier evidence, tests).
func (l *Ledger) Slash(addr string, role string, fractionBps uint64, reason string) (uint64, error) {
	if l.block == nil {
		return 0, fmt.Errorf("slash %s: no block in progress: %w", addr, ErrState)
	}
	if fractionBps > 10_000 {
		return 0, fail(CodeInvalid, "slash %s: fraction %d bps above 10000", addr, fractionBps)
	}
	if len(reason) > MaxReasonLen {
		return 0, fail(CodeInvalid, "slash %s: reason longer than %d bytes", addr, MaxReasonLen)
	}
	if role != tx.RoleProvider && role != tx.RoleVerifier {
		return 0, fail(CodeInvalid, "slash %s: role %q: want provider or verifier", addr, role)
	}
	o := newOverlay(l.block)
	total, _, err := l.slashIn(o, l.header.Height, addr, role, fractionBps, reason)
	if err != nil {
		return 0, err
	}
	o.mergeInto(l.block)
	return total, nil
}

// slashIn is Slash on overlay o at height h for checked arguments. It also resets a slashed
// provider's clean epochs. It returns the amount slashed and the slash record's sequence
// number.
func (l *Ledger) slashIn(o *overlay, h int64, addr, role string, fractionBps uint64, reason string) (uint64, uint64, error) {
	b, ok, err := loadBond(o, addr, role)
	if err != nil {
		return 0, 0, fmt.Errorf("slash %s: %w", addr, err)
	}
	if !ok {
		return 0, 0, fmt.Errorf("slash %s: no %s record: %w", addr, role, ErrNotFound)
	}
	cut := func(v uint64) uint64 {
		hi, lo := bits.Mul64(v, fractionBps)
		q, _ := bits.Div64(hi, lo, 10_000) // hi < 10000 because fractionBps ≤ 10000
		return q
	}
	total := cut(*b.stake)
	*b.stake -= total
	for i := range *b.unbonding {
		c := cut((*b.unbonding)[i].Amount)
		(*b.unbonding)[i].Amount -= c
		total += c // the sum is bounded by the supply, which fits in uint64
	}
	ep, err := l.epoch(o)
	if err != nil {
		return 0, 0, err
	}
	if until := ep.Number + l.params.JailEpochs; until > *b.jailed {
		*b.jailed = until
	}
	if err := b.save(); err != nil {
		return 0, 0, err
	}
	sup, err := l.supply(o)
	if err != nil {
		return 0, 0, err
	}
	sup.Slashed += total
	if err := putJSON(o, keySupply, sup); err != nil {
		return 0, 0, err
	}
	c, _, err := getJSON[Counters](o, keyCounters)
	if err != nil {
		return 0, 0, err
	}
	c.Slashes++
	rec := SlashRecord{Seq: c.Slashes, Height: h, Address: addr, Role: role, Amount: total, Reason: reason}
	if err := putJSON(o, keyCounters, c); err != nil {
		return 0, 0, err
	}
	if err := putJSON(o, keySlash(c.Slashes), rec); err != nil {
		return 0, 0, err
	}
	if role == tx.RoleProvider {
		r, err := l.reputation(o, addr)
		if err != nil {
			return 0, 0, err
		}
		r.CleanEpochs = 0
		r.Slashes++
		r.EpochSlashed = true
		if err := putJSON(o, keyReputation(addr), r); err != nil {
			return 0, 0, err
		}
	}
	return total, c.Slashes, nil
}
