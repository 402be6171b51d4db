package ledger

import (
	"errors"
	"math/bits"
)

// endBlock runs the end-of-block work for height h on the block overlay. Each step runs in
// its own child overlay and is dropped as a whole if it fails (corrupt state only); the
// failure is reported as a "ledger_error" event.
func (l *Ledger) endBlock(block *overlay, h int64) []Event {
	var events []Event
	for _, step := range []func(o *overlay, h int64) ([]Event, error){
		l.completeUnbonding, l.closeChannels, l.closeEvidence, l.epochBoundary, l.epochIncentives,
	} {
		o := newOverlay(block)
		evs, err := step(o, h)
		if err != nil {
			events = append(events, Event{Type: "ledger_error", Attrs: []Attr{{"error", err.Error()}}})
			continue
		}
		o.mergeInto(block)
		events = append(events, evs...)
	}
	return events
}

func (l *Ledger) completeUnbonding(o *overlay, h int64) ([]Event, error) {
	q, ok, err := getJSON[[]QueueEntry](o, keyUnbondQueue(h))
	if err != nil || !ok {
		return nil, err
	}
	var events []Event
	for _, e := range q {
		b, ok, err := loadBond(o, e.Address, e.Role)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		var due uint64
		kept := (*b.unbonding)[:0]
		for _, u := range *b.unbonding {
			if u.CompleteHeight <= h {
				if due, err = add(due, u.Amount, "unbonded stake"); err != nil {
					return nil, err
				}
				continue
			}
			kept = append(kept, u)
		}
		*b.unbonding = kept
		if err := b.save(); err != nil {
			return nil, err
		}
		if err := l.credit(o, e.Address, due); err != nil {
			return nil, err
		}
		events = append(events, Event{Type: "unbond_complete", Attrs: []Attr{
			{"address", e.Address}, {"role", e.Role}, {"amount", u64(due)},
		}})
	}
	o.del(keyUnbondQueue(h))
	return events, nil
}

func (l *Ledger) closeChannels(o *overlay, h int64) ([]Event, error) {
	q, ok, err := getJSON[[]uint64](o, keyCloseQueue(h))
	if err != nil || !ok {
		return nil, err
	}
	var events []Event
	for _, id := range q {
		ch, ok, err := getJSON[Channel](o, keyChannel(id))
		if err != nil {
			return nil, err
		}
		if !ok || ch.Closed || ch.CloseAt != h {
			continue
		}
		if ch.Redeemed > ch.Deposit {
			return nil, errors.New("channel redeemed more than its deposit")
		}
		rest := ch.Deposit - ch.Redeemed
		ch.Closed = true
		ch.Returned = rest
		if err := putJSON(o, keyChannel(id), ch); err != nil {
			return nil, err
		}
		if err := l.credit(o, ch.Consumer, rest); err != nil {
			return nil, err
		}
		events = append(events, Event{Type: "channel_closed", Attrs: []Attr{
			{"channel_id", u64(id)}, {"consumer", ch.Consumer}, {"returned", u64(rest)}, {"redeemed", u64(ch.Redeemed)},
		}})
	}
	o.del(keyCloseQueue(h))
	return events, nil
}

// epochBoundary mints the emission into the reward pool every EpochLength blocks;
// epochIncentives (the next step) pays it out.
func (l *Ledger) epochBoundary(o *overlay, h int64) ([]Event, error) {
	if h <= 0 || uint64(h)%l.params.EpochLength != 0 {
		return nil, nil
	}
	ep, err := l.epoch(o)
	if err != nil {
		return nil, err
	}
	sup, err := l.supply(o)
	if err != nil {
		return nil, err
	}
	mint := l.params.EmissionPerEpoch
	// Emission stops rather than wraps if the supply counters would overflow.
	if _, c := bits.Add64(sup.Minted, mint, 0); c != 0 {
		mint = 0
	}
	if _, c := bits.Add64(ep.RewardPool, mint, 0); c != 0 {
		mint = 0
	}
	if _, c := bits.Add64(sup.Genesis, sup.Minted+mint, 0); c != 0 {
		mint = 0
	}
	sup.Minted += mint
	ep.RewardPool += mint
	ep.Number++
	ep.LastHeight = h
	if err := putJSON(o, keySupply, sup); err != nil {
		return nil, err
	}
	if err := putJSON(o, keyEpoch, ep); err != nil {
		return nil, err
	}
	return []Event{{Type: "epoch", Attrs: []Attr{
		{"epoch", u64(ep.Number)}, {"minted", u64(mint)}, {"reward_pool", u64(ep.RewardPool)},
	}}}, nil
}
