package ledger

import (
	"encoding/json"
	"fmt"

	"github.com/mycel-network/mycel/internal/tx"
)

// State keys. Every value is the canonical JSON (encoding/json) of the record type noted.
const (
	keyParams   = "params"  // Params
	keySupply   = "supply"  // Supply
	keyEpoch    = "epoch"   // Epoch
	keyCounters = "counter" // Counters
)

func keyAccount(addr string) string  { return "acct/" + addr }  // Account
func keyModel(id string) string      { return "model/" + id }   // Model
func keyProvider(addr string) string { return "prov/" + addr }  // Provider
func keyVerifier(addr string) string { return "verif/" + addr } // Verifier
func keyChannel(id uint64) string    { return fmt.Sprintf("chan/%020d", id) }
func keySlash(seq uint64) string     { return fmt.Sprintf("slash/%020d", seq) } // SlashRecord
func keyUnbondQueue(h int64) string  { return fmt.Sprintf("unbondq/%020d", h) } // []QueueEntry
func keyCloseQueue(h int64) string   { return fmt.Sprintf("closeq/%020d", h) }  // []uint64

// Account is an address's balance, next nonce and public key (recorded on its first tx).
type Account struct {
	Address string `json:"address"`
	Balance uint64 `json:"balance"`
	Nonce   uint64 `json:"nonce"`
	PubKey  []byte `json:"pub_key,omitempty"`
}

// Model is a registered model: its id is bound to SHA256 forever.
type Model struct {
	tx.RegisterModel
	RegisteredBy string `json:"registered_by"` // sender address, or "genesis"
	Height       int64  `json:"height"`
}

// Unbonding is stake on its way back to the balance at CompleteHeight's EndBlock.
type Unbonding struct {
	Amount         uint64 `json:"amount"`
	CompleteHeight int64  `json:"complete_height"`
}

// Provider is a registered provider. It is active while Stake ≥ MinProviderStake and it is
// not jailed (epoch < JailedUntilEpoch).
type Provider struct {
	Address          string           `json:"address"`
	Stake            uint64           `json:"stake"` // bonded
	Endpoint         string           `json:"endpoint"`
	Hardware         tx.Hardware      `json:"hardware"`
	Models           []tx.ServedModel `json:"models"`
	Unbonding        []Unbonding      `json:"unbonding"`
	JailedUntilEpoch uint64           `json:"jailed_until_epoch"`
	Height           int64            `json:"height"` // registration height
}

// Verifier is a registered verifier, active while Stake ≥ MinVerifierStake and not jailed.
type Verifier struct {
	Address          string      `json:"address"`
	Stake            uint64      `json:"stake"`
	Unbonding        []Unbonding `json:"unbonding"`
	JailedUntilEpoch uint64      `json:"jailed_until_epoch"`
	Height           int64       `json:"height"`
}

// Channel is a payment channel from Consumer to Provider. Deposit − Redeemed is still locked
// until the channel is Closed (then it has been returned to the consumer).
type Channel struct {
	ID           uint64 `json:"id"`
	Consumer     string `json:"consumer"`
	Provider     string `json:"provider"`
	Deposit      uint64 `json:"deposit"`
	Redeemed     uint64 `json:"redeemed"`
	OpenedHeight int64  `json:"opened_height"`
	CloseAt      int64  `json:"close_at"` // 0 while open; EndBlock of this height closes it
	Closed       bool   `json:"closed"`
	Returned     uint64 `json:"returned"` // what went back to the consumer on close
}

// SlashRecord records one slash.
type SlashRecord struct {
	Seq     uint64 `json:"seq"`
	Height  int64  `json:"height"`
	Address string `json:"address"`
	Role    string `json:"role"`
	Amount  uint64 `json:"amount"`
	Reason  string `json:"reason"`
	// Rewarded is the part of Amount paid to the reporters of evidence (not burned).
	Rewarded uint64 `json:"rewarded,omitempty"`
}

// Supply tracks where umyc came from and went. Total = Genesis + Minted − Slashed − Burned.
type Supply struct {
	Genesis uint64 `json:"genesis"`
	Minted  uint64 `json:"minted"`
	Slashed uint64 `json:"slashed"`
	Burned  uint64 `json:"burned"`
}

// Epoch is the current epoch number and the undistributed reward pool.
type Epoch struct {
	Number     uint64 `json:"number"`
	RewardPool uint64 `json:"reward_pool"`
	LastHeight int64  `json:"last_height"` // height of the last epoch boundary
}

// Counters holds sequence numbers.
type Counters struct {
	NextChannelID uint64 `json:"next_channel_id"`
	Slashes       uint64 `json:"slashes"`
	Evidence      uint64 `json:"evidence,omitempty"` // last evidence id
}

// QueueEntry names a stake whose unbonding completes at a height.
type QueueEntry struct {
	Address string `json:"address"`
	Role    string `json:"role"`
}

// getJSON reads and decodes key; ok is false if it is absent.
func getJSON[T any](g getter, key string) (v T, ok bool, err error) {
	raw, ok := g.get(key)
	if !ok {
		return v, false, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, true, fail(CodeInternal, "corrupt state at %s: %v", key, err)
	}
	return v, true, nil
}

// putJSON encodes v under key.
func putJSON(o *overlay, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fail(CodeInternal, "encode %s: %v", key, err)
	}
	o.set(key, b)
	return nil
}
