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
