package provider

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/mycel-network/mycel/internal/keys"
	"github.com/mycel-network/mycel/internal/provider/backend"
	"github.com/mycel-network/mycel/internal/tx"
)

// ConfigFile is the name of the provider's configuration file in its home directory.
const ConfigFile = "provider.toml"

// Backend names.
const (
	BackendBuiltin = "builtin"
	BackendOpenAI  = "openai"
)

// Config is the provider's configuration (DIR/provider.toml). Relative paths are relative to
// the home directory.
type Config struct {
	ChainRPC       string        `toml:"chain_rpc"`
	ChainID        string        `toml:"chain_id"` // empty: ask the node
	Key            string        `toml:"key"`      // key name in keys_dir
	KeysDir        string        `toml:"keys_dir"`
	DataDir        string        `toml:"data_dir"` // receipts and vouchers (pebble)
	Listen         string        `toml:"listen"`
	PublicEndpoint string        `toml:"public_endpoint"` // registered URL; empty: http://<bound listen address>
	Register       bool          `toml:"register"`        // register or update the provider on the ledger at start
	StakeUmyc      uint64        `toml:"stake_umyc"`
	CreditUmyc     uint64        `toml:"credit_umyc"` // unpaid exposure allowed per channel beyond the latest voucher
	MaxBodyBytes   int64         `toml:"max_body_bytes"`
	RedeemInterval time.Duration `toml:"redeem_interval"`
	RedeemMinUmyc  uint64        `toml:"redeem_min_umyc"` // periodic redemption only when this much is pending
	ChannelPoll    time.Duration `toml:"channel_poll"`    // re-read channels (top-ups, closes) this often
	HealthInterval time.Duration `toml:"health_interval"`
	ShutdownGrace  time.Duration `toml:"shutdown_grace"`
	Models         []ModelConfig `toml:"model"`

	unknown []string // keys of the file LoadConfig did not know: problems for Validate
}

// ModelConfig is one served model.
type ModelConfig struct {
	ID      string `toml:"id"`      // registered model id
	Backend string `toml:"backend"` // builtin | openai

	// builtin (gguf is optional for openai: it gives the tokenizer and the file hash).
	GGUF          string `toml:"gguf"`
	Threads       int    `toml:"threads"`
	KVBudgetBytes int64  `toml:"kv_budget_bytes"`
	ContextLength int    `toml:"context_length"`

	// openai
	BaseURL   string `toml:"base_url"`
	Profile   string `toml:"profile"`    // ollama | llamacpp | vllm | sglang
	ModelName string `toml:"model_name"` // the engine's name for the model
	APIKey    string `toml:"api_key"`

	PriceInPerMTok  uint64 `toml:"price_in_per_mtok"`
	PriceOutPerMTok uint64 `toml:"price_out_per_mtok"`
	MaxConcurrent   int    `toml:"max_concurrent"`
	QueueLength     int    `toml:"queue_length"`
}

// DefaultConfig returns the defaults; it serves no model.
func DefaultConfig() Config {
	return Config{
		ChainRPC:       "http://127.0.0.1:26657",
		Key:            "provider",
		KeysDir:        "keys",
		DataDir:        "data",
		Listen:         "127.0.0.1:8090",
		Register:       true,
		StakeUmyc:      100_000_000,
		CreditUmyc:     10_000,
		MaxBodyBytes:   1 << 20,
		RedeemInterval: 10 * time.Minute,
		RedeemMinUmyc:  10_000,
		ChannelPoll:    5 * time.Second,
		HealthInterval: 5 * time.Second,
		ShutdownGrace:  10 * time.Second,
	}
}

// DefaultModel returns the defaults of a model entry.
func DefaultModel() ModelConfig {
	return ModelConfig{Backend: BackendBuiltin, KVBudgetBytes: 256 << 20, PriceInPerMTok: 100_000, PriceOutPerMTok: 300_000, MaxConcurrent: 4, QueueLength: 64}
}

// LoadConfig reads DIR/provider.toml over the defaults and resolves relative paths against dir.
// It does not validate: keys it does not know are kept for Validate, which lists them with
// every other problem.
func LoadConfig(dir string) (Config, error) {
	cfg := DefaultConfig()
	path := filepath.Join(dir, ConfigFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("load config: %w", err)
	}
	md, err := toml.Decode(string(b), &cfg)
	if err != nil {
		return cfg, fmt.Errorf("load config %s: %w", path, err)
	}
	for _, k := range md.Undecoded() {
		cfg.unknown = append(cfg.unknown, k.String())
	}
	// Zero fields of a model entry take DefaultModel's values.
	for i := range cfg.Models {
		cfg.Models[i] = cfg.Models[i].withDefaults()
	}
	cfg.resolve(dir)
	return cfg, nil
}

func (m ModelConfig) withDefaults() ModelConfig {
	def := DefaultModel()
	if m.Backend == "" {
		m.Backend = def.Backend
	}
	if m.KVBudgetBytes == 0 {
		m.KVBudgetBytes = def.KVBudgetBytes
	}
	if m.MaxConcurrent == 0 {
		m.MaxConcurrent = def.MaxConcurrent
	}
	if m.QueueLength == 0 {
		m.QueueLength = def.QueueLength
	}
	return m
}

func (c *Config) resolve(dir string) {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	c.KeysDir = abs(c.KeysDir)
	c.DataDir = abs(c.DataDir)
	for i := range c.Models {
		c.Models[i].GGUF = abs(c.Models[i].GGUF)
	}
}

// Validate lists every problem of the configuration.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, k := range c.unknown {
		add("unknown key %q", k)
	}
	if c.ChainRPC == "" {
		add("chain_rpc is empty")
	}
	if err := keys.ValidateName(c.Key); err != nil {
		add("key %q: %v", c.Key, err)
	}
	if c.KeysDir == "" {
		add("keys_dir is empty")
	}
	if c.DataDir == "" {
		add("data_dir is empty")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		add("listen %q: want host:port (port 0 picks a free one)", c.Listen)
	}
	if c.PublicEndpoint != "" {
		if err := tx.ValidateEndpoint(c.PublicEndpoint); err != nil {
			add("public_endpoint: %v", err)
		}
	}
	if c.Register && c.StakeUmyc == 0 {
		add("stake_umyc must be positive")
	}
	if c.CreditUmyc == 0 {
		add("credit_umyc must be positive (about one request's maximum cost)")
	}
	if c.MaxBodyBytes < 1024 {
		add("max_body_bytes %d: want at least 1024", c.MaxBodyBytes)
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"redeem_interval", c.RedeemInterval}, {"channel_poll", c.ChannelPoll}, {"health_interval", c.HealthInterval}, {"shutdown_grace", c.ShutdownGrace}} {
		if d.d <= 0 {
			add("%s must be positive", d.name)
		}
	}
	if len(c.Models) == 0 {
		add("no [[model]] configured")
	}
	if len(c.Models) > tx.MaxServedModels {
		add("%d models, the ledger allows %d", len(c.Models), tx.MaxServedModels)
	}
	seen := map[string]bool{}
	for i, m := range c.Models {
		where := fmt.Sprintf("model[%d]", i)
		if m.ID != "" {
			where += " (" + m.ID + ")"
		}
		if err := tx.ValidateModelID(m.ID); err != nil {
			add("%s: id: %v", where, err)
		}
		if seen[m.ID] {
			add("%s: id listed twice", where)
		}
		seen[m.ID] = true
		switch m.Backend {
		case BackendBuiltin:
			if m.GGUF == "" {
				add("%s: builtin backend needs gguf (the model file)", where)
			}
			if m.KVBudgetBytes <= 0 {
				add("%s: kv_budget_bytes must be positive", where)
			}
			if m.Threads < 0 {
				add("%s: threads must be >= 0", where)
			}
		case BackendOpenAI:
			if err := tx.ValidateEndpoint(m.BaseURL); err != nil {
				add("%s: base_url: %v", where, err)
			}
			if _, ok := backend.LookupProfile(m.Profile); !ok {
				add("%s: profile %q: want one of %v", where, m.Profile, backend.ProfileNames())
			}
			if m.ModelName == "" {
				add("%s: openai backend needs model_name (the engine's name for the model)", where)
			}
		default:
			add("%s: backend %q: want builtin or openai", where, m.Backend)
		}
		if m.ContextLength < 0 {
			add("%s: context_length must be >= 0", where)
		}
		if m.MaxConcurrent < 1 {
			add("%s: max_concurrent must be at least 1", where)
		}
		if m.QueueLength < 0 {
			add("%s: queue_length must be >= 0", where)
		}
		if m.PriceInPerMTok == 0 && m.PriceOutPerMTok == 0 {
			add("%s: price_in_per_mtok and price_out_per_mtok are both 0 (serving for free cannot be billed)", where)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid provider config:\n  %w", joinIndented(errs))
	}
	return nil
}

type joined []error

func (j joined) Error() string {
	var b bytes.Buffer
	for i, e := range j {
		if i > 0 {
			b.WriteString("\n  ")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

func (j joined) Unwrap() []error { return j }

func joinIndented(errs []error) error { return joined(errs) }

// Encode writes the effective configuration as TOML.
func (c Config) Encode() ([]byte, error) {
	var b bytes.Buffer
	enc := toml.NewEncoder(&b)
	enc.Indent = ""
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	return b.Bytes(), nil
}

// ErrConfigExists is returned by WriteDefaultConfig when the file is already there.
var ErrConfigExists = errors.New("provider config already exists")
