package provider

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// InitOptions fill the commented default configuration.
type InitOptions struct {
	Key     string // provider key name (default: DefaultConfig().Key)
	ModelID string // registered id of the example builtin model
	GGUF    string // its model file
}

// DefaultTOML is the commented configuration `mycel provider init` writes.
func DefaultTOML(o InitOptions) string {
	d, m := DefaultConfig(), DefaultModel()
	if o.Key == "" {
		o.Key = d.Key
	}
	return fmt.Sprintf(`# Mycel provider configuration (mycel provider --home DIR reads DIR/provider.toml).
# Relative paths are relative to DIR. Amounts are umyc (1 myc = 1,000,000 umyc).
# Print the effective configuration with: mycel config dump --home DIR --role provider

# CometBFT RPC of a node of the chain.
chain_rpc = %q
# Chain id; empty asks the node.
chain_id = ""
# The provider's key: DIR/keys/<key>.json (mycel keys add --home DIR <key>).
key = %q
keys_dir = %q
# Receipts and vouchers (pebble); back it up: it is what the provider is owed.
data_dir = %q

# HTTP API. Port 0 picks a free port.
listen = %q
# URL consumers reach this provider at, registered on the ledger. Empty: http://<listen address>.
public_endpoint = ""

# Register (or update) the provider on the ledger at start with this stake.
register = true
stake_umyc = %d
# Unpaid exposure allowed per channel beyond the latest voucher: about one request's maximum cost.
credit_umyc = %d
max_body_bytes = %d

# Redeem vouchers every redeem_interval when at least redeem_min_umyc is pending; closing
# channels (seen every channel_poll) are redeemed at once, and everything at shutdown.
# channel_poll is shortened at start to a quarter of the ledger's close challenge window
# (channel_challenge_blocks × the chain's block interval) when it is longer.
redeem_interval = %q
redeem_min_umyc = %d
channel_poll = %q
# Probe each model's engine this often; a silent engine marks its model unhealthy.
health_interval = %q
shutdown_grace = %q

# One [[model]] per served model. id is the model's id on the ledger; its file's sha256 must
# match the registered one.
[[model]]
id = %q
backend = "builtin"          # builtin: Mycel's engine; openai: an OpenAI-compatible server
gguf = %q
threads = 0                  # 0: all cores
kv_budget_bytes = %d
context_length = 0           # 0: the model's own
price_in_per_mtok = %d       # umyc per 1M prompt tokens
price_out_per_mtok = %d      # umyc per 1M output tokens
max_concurrent = %d
queue_length = %d

# An engine already running on this host (Ollama, llama.cpp's server, vLLM, SGLang):
# [[model]]
# id = "qwen2.5-7b-instruct-q4km"
# backend = "openai"
# base_url = "http://127.0.0.1:11434/v1"
# profile = "ollama"         # ollama | llamacpp | vllm | sglang
# model_name = "qwen2.5:7b"  # the engine's name for the model
# gguf = ""                  # optional: the served file, for its tokenizer and hash
# price_in_per_mtok = 100000
# price_out_per_mtok = 300000
# max_concurrent = 8
# queue_length = 64
`, d.ChainRPC, o.Key, "keys", "data", d.Listen, d.StakeUmyc, d.CreditUmyc, d.MaxBodyBytes,
		d.RedeemInterval.String(), d.RedeemMinUmyc, d.ChannelPoll.String(), d.HealthInterval.String(), d.ShutdownGrace.String(),
		o.ModelID, o.GGUF, m.KVBudgetBytes, m.PriceInPerMTok, m.PriceOutPerMTok, m.MaxConcurrent, m.QueueLength)
}

// WriteDefaultConfig writes DefaultTOML to DIR/provider.toml; it refuses to overwrite.
func WriteDefaultConfig(dir string, o InitOptions) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("write config: %w", err)
	}
	path := filepath.Join(dir, ConfigFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return path, fmt.Errorf("%s: %w", path, ErrConfigExists)
	}
	if err != nil {
		return "", fmt.Errorf("write config: %w", err)
	}
	if _, err := f.WriteString(DefaultTOML(o)); err != nil {
		f.Close()
		return "", fmt.Errorf("write config: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("write config: %w", err)
	}
	return path, f.Close()
}
