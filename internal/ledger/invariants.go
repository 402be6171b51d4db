package ledger

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
)

// CheckInvariants verifies the supply invariant over the last committed state:
// genesis + minted − slashed − burned == Σ balances + Σ bonded + Σ unbonding + Σ locked
// channel deposits (deposit − redeemed of channels not closed) + bonds of open evidence +
// reward pool,
// and that no channel has redeemed more than its deposit. Tests call it after every block.
// It is a full scan: O(state).
func (l *Ledger) CheckInvariants() error {
	s := l.committed
	sup, err := l.supply(s)
	if err != nil {
		return err
	}
	ep, err := l.epoch(s)
	if err != nil {
		return err
	}
	want := new(big.Int).SetUint64(sup.Genesis)
	want.Add(want, new(big.Int).SetUint64(sup.Minted))
	want.Sub(want, new(big.Int).SetUint64(sup.Slashed))
	want.Sub(want, new(big.Int).SetUint64(sup.Burned))

	have := new(big.Int).SetUint64(ep.RewardPool)
	addU := func(v uint64) { have.Add(have, new(big.Int).SetUint64(v)) }
	var ierr error
	s.scan("", func(key string, val []byte) bool {
		prefix, _, _ := strings.Cut(key, "/")
		switch prefix {
		case "acct":
			var a Account
			ierr = json.Unmarshal(val, &a)
			addU(a.Balance)
		case "prov":
			var p Provider
			ierr = json.Unmarshal(val, &p)
			addU(p.Stake)
			for _, u := range p.Unbonding {
				addU(u.Amount)
			}
		case "verif":
			var v Verifier
			ierr = json.Unmarshal(val, &v)
			addU(v.Stake)
			for _, u := range v.Unbonding {
				addU(u.Amount)
			}
		case "evid":
			var e Evidence
			ierr = json.Unmarshal(val, &e)
			if ierr == nil && e.Status == EvidenceOpen {
				addU(e.Bond)
			}
		case "chan":
			var c Channel
			ierr = json.Unmarshal(val, &c)
			if ierr == nil && c.Redeemed > c.Deposit {
				ierr = fmt.Errorf("channel %d redeemed %d > deposit %d", c.ID, c.Redeemed, c.Deposit)
			}
			if ierr == nil && !c.Closed {
				addU(c.Deposit - c.Redeemed)
			}
		}
		if ierr != nil {
			ierr = fmt.Errorf("at %s: %w", key, ierr)
			return false
		}
		return true
	})
	if ierr != nil {
		return fmt.Errorf("invariants: %w", ierr)
	}
	if want.Cmp(have) != 0 {
		return fmt.Errorf("invariants: supply %s (genesis %d + minted %d − slashed %d − burned %d) != holdings %s",
			want, sup.Genesis, sup.Minted, sup.Slashed, sup.Burned, have)
	}
	return nil
}
