package ledger

import (
	"fmt"
	"math/bits"

	"github.com/mycel-network/mycel/internal/address"
	"github.com/mycel-network/mycel/internal/tx"
)

// Genesis is the CometBFT genesis "app_state".
type Genesis struct {
	Params   Params             `json:"params"`
	Accounts []GenesisAccount   `json:"accounts"`
	Models   []tx.RegisterModel `json:"models,omitempty"`
}

// GenesisAccount funds one address at genesis.
type GenesisAccount struct {
	Address string `json:"address"`
	Balance uint64 `json:"balance"` // umyc
}

// Params are the chain's parameters, fixed at genesis. Amounts are umyc, durations blocks.
type Params struct {
	MinFee                 uint64 `json:"min_fee"`
	MinProviderStake       uint64 `json:"min_provider_stake"`
	MinVerifierStake       uint64 `json:"min_verifier_stake"`
	UnbondingBlocks        uint64 `json:"unbonding_blocks"`
	ChannelChallengeBlocks uint64 `json:"channel_challenge_blocks"`
	EpochLength            uint64 `json:"epoch_length"`
	EmissionPerEpoch       uint64 `json:"emission_per_epoch"`
	SlashFractionBps       uint64 `json:"slash_fraction_bps"`
	JailEpochs             uint64 `json:"jail_epochs"`

	// Verification and incentives (issue 6). Zero means the default of DefaultParams, so
	// genesis files written before these existed keep working.
	ProviderShareBps   uint64 `json:"provider_share_bps,omitempty"`   // pool share of providers (incentive); verifiers get the rest
	BondsAlphaBps      uint64 `json:"bonds_alpha_bps,omitempty"`      // Yuma bonds EMA α
	ClipLowBps         uint64 `json:"clip_low_bps,omitempty"`         // δ: incentive weights are clipped into [C·(1−δ), C]
	EvidenceVoteBlocks uint64 `json:"evidence_vote_blocks,omitempty"` // evidence vote window
	EvidenceMinBond    uint64 `json:"evidence_min_bond,omitempty"`    // umyc an accuser must lock
	EvidenceRewardBps  uint64 `json:"evidence_reward_bps,omitempty"`  // share of a slash paid to the reporters; the rest is burned
	AuditFloorBps      uint64 `json:"audit_floor_bps,omitempty"`      // audit probability after AuditCleanEpochs clean epochs
	AuditCleanEpochs   uint64 `json:"audit_clean_epochs,omitempty"`   // clean epochs to fall from 100% to the floor
}

// withDefaults returns p with every zero verification parameter set to its default.
func (p Params) withDefaults() Params {
	d := DefaultParams()
	for _, f := range []struct{ v, def *uint64 }{
		{&p.ProviderShareBps, &d.ProviderShareBps}, {&p.BondsAlphaBps, &d.BondsAlphaBps},
		{&p.ClipLowBps, &d.ClipLowBps}, {&p.EvidenceVoteBlocks, &d.EvidenceVoteBlocks},
		{&p.EvidenceMinBond, &d.EvidenceMinBond}, {&p.EvidenceRewardBps, &d.EvidenceRewardBps},
		{&p.AuditFloorBps, &d.AuditFloorBps}, {&p.AuditCleanEpochs, &d.AuditCleanEpochs},
	} {
		if *f.v == 0 {
			*f.v = *f.def
		}
	}
	return p
}

// maxBlocks bounds block-count parameters so height arithmetic cannot overflow int64.
const maxBlocks = 1 << 40

// DefaultParams returns the parameters documented in docs/spec/ledger.md.
func DefaultParams() Params {
	return Params{
		MinFee:                 1_000,       // 0.001 myc
		MinProviderStake:       100_000_000, // 100 myc
		MinVerifierStake:       100_000_000, // 100 myc
		UnbondingBlocks:        100,
		ChannelChallengeBlocks: 20,
		EpochLength:            100,
		EmissionPerEpoch:       10_000_000, // 10 myc
		SlashFractionBps:       1_000,      // 10%
		JailEpochs:             10,
		ProviderShareBps:       5_000,
		BondsAlphaBps:          1_000,
		ClipLowBps:             2_000,
		EvidenceVoteBlocks:     50,
		EvidenceMinBond:        10_000_000, // 10 myc
		EvidenceRewardBps:      5_000,
		AuditFloorBps:          500,
		AuditCleanEpochs:       30,
	}
}

// Validate checks parameter ranges.
func (p Params) Validate() error {
	switch {
	case p.EpochLength == 0 || p.EpochLength > maxBlocks:
		return fmt.Errorf("params: epoch_length must be 1..%d", uint64(maxBlocks))
	case p.UnbondingBlocks == 0 || p.UnbondingBlocks > maxBlocks:
		return fmt.Errorf("params: unbonding_blocks must be 1..%d", uint64(maxBlocks))
	case p.ChannelChallengeBlocks == 0 || p.ChannelChallengeBlocks > maxBlocks:
		return fmt.Errorf("params: channel_challenge_blocks must be 1..%d", uint64(maxBlocks))
	case p.SlashFractionBps > 10_000:
		return fmt.Errorf("params: slash_fraction_bps must be 0..10000")
	case p.JailEpochs > maxBlocks:
		return fmt.Errorf("params: jail_epochs must be 0..%d", uint64(maxBlocks))
	case p.MinProviderStake == 0 || p.MinVerifierStake == 0:
		return fmt.Errorf("params: min_provider_stake and min_verifier_stake must be positive")
	case p.ProviderShareBps > 10_000 || p.BondsAlphaBps > 10_000 || p.ClipLowBps > 10_000 ||
		p.EvidenceRewardBps > 10_000 || p.AuditFloorBps > 10_000:
		return fmt.Errorf("params: provider_share_bps, bonds_alpha_bps, clip_low_bps, evidence_reward_bps and audit_floor_bps must be 0..10000")
	case p.EvidenceVoteBlocks > maxBlocks || p.AuditCleanEpochs > maxBlocks:
		return fmt.Errorf("params: evidence_vote_blocks and audit_clean_epochs must be 0..%d", uint64(maxBlocks))
	}
	return nil
}

// Validate checks the parameters, that every account address is valid and listed once, that
// the total supply fits in uint64, and that every model is valid and listed once.
func (g Genesis) Validate() error {
	if err := g.Params.Validate(); err != nil {
		return fmt.Errorf("genesis: %w: %w", err, ErrBadGenesis)
	}
	seen := make(map[string]bool, len(g.Accounts))
	var total uint64
	for i, a := range g.Accounts {
		if err := address.Validate(a.Address); err != nil {
			return fmt.Errorf("genesis: account %d: %w: %w", i, err, ErrBadGenesis)
		}
		if seen[a.Address] {
			return fmt.Errorf("genesis: account %s listed twice: %w", a.Address, ErrBadGenesis)
		}
		seen[a.Address] = true
		var carry uint64
		total, carry = bits.Add64(total, a.Balance, 0)
		if carry != 0 {
			return fmt.Errorf("genesis: total supply exceeds 2^64-1 umyc: %w", ErrBadGenesis)
		}
	}
	ids := make(map[string]bool, len(g.Models))
	for _, m := range g.Models {
		if err := m.ValidateBasic(); err != nil {
			return fmt.Errorf("genesis: model %q: %w: %w", m.ID, err, ErrBadGenesis)
		}
		if ids[m.ID] {
			return fmt.Errorf("genesis: model %q listed twice: %w", m.ID, ErrBadGenesis)
		}
		ids[m.ID] = true
	}
	return nil
}
