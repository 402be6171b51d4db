package tx

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/mycel-network/mycel/internal/address"
	"github.com/mycel-network/mycel/internal/channel"
)

// Message type names, the Msg.Type of each concrete message.
const (
	TypeSend             = "send"
	TypeRegisterModel    = "register_model"
	TypeRegisterProvider = "register_provider"
	TypeUpdateProvider   = "update_provider"
	TypeRegisterVerifier = "register_verifier"
	TypeUnbond           = "unbond"
	TypeOpenChannel      = "open_channel"
	TypeTopUpChannel     = "top_up_channel"
	TypeRedeemVoucher    = "redeem_voucher"
	TypeCloseChannel     = "close_channel"
)

// Roles a stake can be bonded in.
const (
	RoleProvider = "provider"
	RoleVerifier = "verifier"
)

// Limits on message fields.
const (
	MaxModelIDLen   = 128
	MaxEndpointLen  = 256
	MaxServedModels = 64
	MaxGPUs         = 16
	maxShortString  = 128
)

// Message is implemented by every concrete message type.
type Message interface {
	Type() string
	ValidateBasic() error
}

// Msg is the typed union carried in a transaction body: Type names the concrete message and
// Value holds its canonical JSON.
type Msg struct {
	Type  string          `json:"type"`
	Value json.RawMessage `json:"value"`
}

// NewMsg wraps a concrete message (Send, RegisterModel, ...) into a Msg.
func NewMsg(m interface{ Type() string }) (Msg, error) {
	v, err := json.Marshal(m)
	if err != nil {
		return Msg{}, fmt.Errorf("new msg %s: %w", m.Type(), err)
	}
	return Msg{Type: m.Type(), Value: v}, nil
}

// MustMsg is NewMsg for messages built in code from trusted values; it panics on error, which
// cannot happen for this package's message types.
func MustMsg(m interface{ Type() string }) Msg {
	msg, err := NewMsg(m)
	if err != nil {
		panic(err)
	}
	return msg
}

// Decode strictly decodes the value into its concrete type (a value, not a pointer: Send,
// RegisterModel, ...). Unknown types wrap ErrUnknownMsg; unknown fields, trailing bytes and
// non-canonical encodings wrap ErrMalformed.
func (m Msg) Decode() (any, error) {
	switch m.Type {
	case TypeSend:
		return decodeAs[Send](m)
	case TypeRegisterModel:
		return decodeAs[RegisterModel](m)
	case TypeRegisterProvider:
		return decodeAs[RegisterProvider](m)
	case TypeUpdateProvider:
		return decodeAs[UpdateProvider](m)
	case TypeRegisterVerifier:
		return decodeAs[RegisterVerifier](m)
	case TypeUnbond:
		return decodeAs[Unbond](m)
	case TypeOpenChannel:
		return decodeAs[OpenChannel](m)
	case TypeTopUpChannel:
		return decodeAs[TopUpChannel](m)
	case TypeRedeemVoucher:
		return decodeAs[RedeemVoucher](m)
	case TypeCloseChannel:
		return decodeAs[CloseChannel](m)
	case TypeAnchorReceipts:
		return decodeAs[AnchorReceipts](m)
	case TypeCommitAuditSeed:
		return decodeAs[CommitAuditSeed](m)
	case TypeRevealAuditSeed:
		return decodeAs[RevealAuditSeed](m)
	case TypeSubmitAuditReport:
		return decodeAs[SubmitAuditReport](m)
	case TypeSubmitEvidence:
		return decodeAs[SubmitEvidence](m)
	case TypeVoteEvidence:
		return decodeAs[VoteEvidence](m)
	case TypeCommitWeights:
		return decodeAs[CommitWeights](m)
	case TypeRevealWeights:
		return decodeAs[RevealWeights](m)
	case TypeRecordCapacity:
		return decodeAs[RecordCapacity](m)
	default:
		return nil, unknownf("%.64q", m.Type)
	}
}

func decodeAs[T any](m Msg) (any, error) {
	var v T
	if err := strictUnmarshal(m.Value, &v); err != nil {
		return nil, fmt.Errorf("%s value: %w", m.Type, err)
	}
	again, err := json.Marshal(v)
	if err != nil || !bytes.Equal(again, m.Value) {
		return nil, malformedf("%s value: not in canonical encoding", m.Type)
	}
	return v, nil
}

// Send moves Amount umyc from the sender to To.
type Send struct {
	To     string `json:"to"`
	Amount uint64 `json:"amount"`
}

// Type implements Message.
func (Send) Type() string { return TypeSend }

// ValidateBasic implements Message.
func (m Send) ValidateBasic() error {
	if err := address.Validate(m.To); err != nil {
		return invalidf("to: %v", err)
	}
	if m.Amount == 0 {
		return invalidf("amount must be positive")
	}
	return nil
}

// RegisterModel binds a model id to the sha256 of its GGUF file, forever.
type RegisterModel struct {
	ID            string `json:"id"`
	SHA256        string `json:"sha256"` // lower-case hex of the GGUF file's sha256
	Architecture  string `json:"architecture"`
	Parameters    uint64 `json:"parameters"`
	Quantization  string `json:"quantization"`
	ContextLength uint32 `json:"context_length"`
	License       string `json:"license"`
}

// Type implements Message.
func (RegisterModel) Type() string { return TypeRegisterModel }

// ValidateBasic implements Message.
func (m RegisterModel) ValidateBasic() error {
	if err := ValidateModelID(m.ID); err != nil {
		return err
	}
	if len(m.SHA256) != 64 || strings.Trim(m.SHA256, "0123456789abcdef") != "" {
		return invalidf("sha256 must be 64 lower-case hex digits")
	}
	if err := shortString("architecture", m.Architecture, true); err != nil {
		return err
	}
	if err := shortString("quantization", m.Quantization, true); err != nil {
		return err
	}
	if err := shortString("license", m.License, false); err != nil {
		return err
	}
	if m.Parameters == 0 {
		return invalidf("parameters must be positive")
	}
	if m.ContextLength == 0 {
		return invalidf("context length must be positive")
	}
	return nil
}

// ValidateModelID checks a model id: 1..128 characters from [a-z0-9._:-].
func ValidateModelID(id string) error {
	if id == "" || len(id) > MaxModelIDLen {
		return invalidf("model id must have 1..%d characters", MaxModelIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return invalidf("model id %q: character %q not in [a-z0-9._:-]", id, c)
		}
	}
	return nil
}

func shortString(field, s string, required bool) error {
	if required && s == "" {
		return invalidf("%s is required", field)
	}
	if len(s) > maxShortString {
		return invalidf("%s longer than %d bytes", field, maxShortString)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return invalidf("%s contains a control character", field)
		}
	}
	return nil
}

// Hardware is what a provider declares about its machine (self-reported; proven later).
type Hardware struct {
	CPU      string   `json:"cpu"`
	Cores    uint32   `json:"cores"`
	RAMBytes uint64   `json:"ram_bytes"`
	GPUs     []string `json:"gpus"`
}

// IsZero reports whether h is the zero value (UpdateProvider: leave unchanged).
func (h Hardware) IsZero() bool {
	return h.CPU == "" && h.Cores == 0 && h.RAMBytes == 0 && len(h.GPUs) == 0
}

// Validate checks string lengths and the GPU count.
func (h Hardware) Validate() error {
	if err := shortString("hardware cpu", h.CPU, false); err != nil {
		return err
	}
	if len(h.GPUs) > MaxGPUs {
		return invalidf("%d gpus, limit %d", len(h.GPUs), MaxGPUs)
	}
	for _, g := range h.GPUs {
		if err := shortString("gpu", g, true); err != nil {
			return err
		}
	}
	return nil
}

// ServedModel is one model a provider serves, with its prices in umyc per 1M tokens.
type ServedModel struct {
	ModelID         string `json:"model_id"`
	PriceInPerMTok  uint64 `json:"price_in_per_mtok"`
	PriceOutPerMTok uint64 `json:"price_out_per_mtok"`
}

func validateServed(models []ServedModel, required bool) error {
	if required && len(models) == 0 {
		return invalidf("at least one served model is required")
	}
	if len(models) > MaxServedModels {
		return invalidf("%d served models, limit %d", len(models), MaxServedModels)
	}
	seen := make(map[string]bool, len(models))
	for _, m := range models {
		if err := ValidateModelID(m.ModelID); err != nil {
			return err
		}
		if seen[m.ModelID] {
			return invalidf("model %q listed twice", m.ModelID)
		}
		seen[m.ModelID] = true
	}
	return nil
}

// ValidateEndpoint checks a provider endpoint: an absolute http or https URL with a host.
func ValidateEndpoint(s string) error {
	if s == "" || len(s) > MaxEndpointLen {
		return invalidf("endpoint must have 1..%d bytes", MaxEndpointLen)
	}
	u, err := url.Parse(s)
	if err != nil {
		return invalidf("endpoint %q: %v", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return invalidf("endpoint %q: scheme must be http or https", s)
	}
	if u.Host == "" || u.User != nil {
		return invalidf("endpoint %q: want a host and no user info", s)
	}
	return nil
}

// RegisterProvider bonds Stake and announces an endpoint, hardware and served models.
type RegisterProvider struct {
	Stake    uint64        `json:"stake"`
	Endpoint string        `json:"endpoint"`
	Hardware Hardware      `json:"hardware"`
	Models   []ServedModel `json:"models"`
}

// Type implements Message.
func (RegisterProvider) Type() string { return TypeRegisterProvider }

// ValidateBasic implements Message.
func (m RegisterProvider) ValidateBasic() error {
	if m.Stake == 0 {
		return invalidf("stake must be positive")
	}
	if err := ValidateEndpoint(m.Endpoint); err != nil {
		return err
	}
	if err := m.Hardware.Validate(); err != nil {
		return err
	}
	return validateServed(m.Models, true)
}

// UpdateProvider changes a registered provider. Zero fields mean "unchanged": an empty
// Endpoint, a zero Hardware, an empty Models list, a zero AddStake.
type UpdateProvider struct {
	Endpoint string        `json:"endpoint"`
	Hardware Hardware      `json:"hardware"`
	Models   []ServedModel `json:"models"`
	AddStake uint64        `json:"add_stake"`
}

// Type implements Message.
func (UpdateProvider) Type() string { return TypeUpdateProvider }

// ValidateBasic implements Message.
func (m UpdateProvider) ValidateBasic() error {
	if m.Endpoint != "" {
		if err := ValidateEndpoint(m.Endpoint); err != nil {
			return err
		}
	}
	if err := m.Hardware.Validate(); err != nil {
		return err
	}
	if err := validateServed(m.Models, false); err != nil {
		return err
	}
	if m.Endpoint == "" && m.Hardware.IsZero() && len(m.Models) == 0 && m.AddStake == 0 {
		return invalidf("nothing to update")
	}
	return nil
}

// RegisterVerifier bonds Stake as a verifier.
type RegisterVerifier struct {
	Stake uint64 `json:"stake"`
}

// Type implements Message.
func (RegisterVerifier) Type() string { return TypeRegisterVerifier }

// ValidateBasic implements Message.
func (m RegisterVerifier) ValidateBasic() error {
	if m.Stake == 0 {
		return invalidf("stake must be positive")
	}
	return nil
}

// Unbond starts unbonding Amount of the sender's stake in Role ("provider" or "verifier").
type Unbond struct {
	Role   string `json:"role"`
	Amount uint64 `json:"amount"`
}

// Type implements Message.
func (Unbond) Type() string { return TypeUnbond }

// ValidateBasic implements Message.
func (m Unbond) ValidateBasic() error {
	if m.Role != RoleProvider && m.Role != RoleVerifier {
		return invalidf("role %.32q: want provider or verifier", m.Role)
	}
	if m.Amount == 0 {
		return invalidf("amount must be positive")
	}
	return nil
}

// OpenChannel locks Deposit from the sender (the consumer) in a new channel to Provider.
type OpenChannel struct {
	Provider string `json:"provider"`
	Deposit  uint64 `json:"deposit"`
}

// Type implements Message.
func (OpenChannel) Type() string { return TypeOpenChannel }

// ValidateBasic implements Message.
func (m OpenChannel) ValidateBasic() error {
	if err := address.Validate(m.Provider); err != nil {
		return invalidf("provider: %v", err)
	}
	if m.Deposit == 0 {
		return invalidf("deposit must be positive")
	}
	return nil
}

// TopUpChannel adds Amount to an open channel's deposit (sender = consumer).
type TopUpChannel struct {
	ChannelID uint64 `json:"channel_id"`
	Amount    uint64 `json:"amount"`
}

// Type implements Message.
func (TopUpChannel) Type() string { return TypeTopUpChannel }

// ValidateBasic implements Message.
func (m TopUpChannel) ValidateBasic() error {
	if m.ChannelID == 0 {
		return invalidf("channel id must be positive")
	}
	if m.Amount == 0 {
		return invalidf("amount must be positive")
	}
	return nil
}

// RedeemVoucher pays the channel's provider (the sender) what the voucher adds over what was
// already redeemed, capped by the deposit.
type RedeemVoucher struct {
	Voucher channel.Voucher `json:"voucher"`
}

// Type implements Message.
func (RedeemVoucher) Type() string { return TypeRedeemVoucher }

// ValidateBasic implements Message.
func (m RedeemVoucher) ValidateBasic() error {
	v := m.Voucher
	if v.ChainID == "" || len(v.ChainID) > MaxChainID {
		return invalidf("voucher chain id must have 1..%d bytes", MaxChainID)
	}
	if v.ChannelID == 0 {
		return invalidf("voucher channel id must be positive")
	}
	if v.Amount == 0 {
		return invalidf("voucher amount must be positive")
	}
	return nil
}

// CloseChannel starts closing a channel (sender = consumer); after the challenge window the
// remainder returns to the consumer.
type CloseChannel struct {
	ChannelID uint64 `json:"channel_id"`
}

// Type implements Message.
func (CloseChannel) Type() string { return TypeCloseChannel }

// ValidateBasic implements Message.
func (m CloseChannel) ValidateBasic() error {
	if m.ChannelID == 0 {
		return invalidf("channel id must be positive")
	}
	return nil
}
