package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/mycel-network/mycel/internal/chainclient"
	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/devnet"
	"github.com/mycel-network/mycel/internal/keys"
	"github.com/mycel-network/mycel/internal/tx"
)

// txCommand builds one message from its flags.
type txCommand struct {
	summary string
	// flags registers the message's flags and returns a function that
	// builds the message once they are parsed.
	flags func(fs *flag.FlagSet, keysDir func() string) func() (any, error)
}

// amountFlag is a required or optional amount ("5myc", "5000000umyc").
type amountFlag struct {
	v   uint64
	set bool
}

func (a *amountFlag) String() string {
	if !a.set {
		return ""
	}
	return tx.FormatAmount(a.v)
}

func (a *amountFlag) Set(s string) error {
	v, err := tx.ParseAmount(s)
	if err != nil {
		return err
	}
	a.v, a.set = v, true
	return nil
}

func amount(fs *flag.FlagSet, name, usage string) *amountFlag {
	a := &amountFlag{}
	fs.Var(a, name, usage+" (e.g. 5myc or 5000000umyc)")
	return a
}

func required(name string, a *amountFlag) error {
	if !a.set {
		return fmt.Errorf("--%s is required", name)
	}
	return nil
}

// listFlag collects a repeatable flag; each use may hold comma-separated
// values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// providerFlags are the flags of register-provider and update-provider.
type providerFlags struct {
	endpoint string
	cpu      string
	cores    uint
	ram      uint64
	gpus     listFlag
	models   listFlag
}

func (p *providerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.endpoint, "endpoint", "", "public endpoint URL")
	fs.StringVar(&p.cpu, "cpu", "", "declared CPU model")
	fs.UintVar(&p.cores, "cores", 0, "declared CPU cores")
	fs.Uint64Var(&p.ram, "ram-bytes", 0, "declared RAM in bytes")
	fs.Var(&p.gpus, "gpu", "declared GPU (repeatable or comma-separated)")
	fs.Var(&p.models, "model", "served model MODEL_ID:PRICE_IN:PRICE_OUT, prices per 1M tokens (e.g. qwen-0.5b:0.1myc:0.2myc); repeatable")
}

func (p *providerFlags) hardware() tx.Hardware {
	return tx.Hardware{CPU: p.cpu, Cores: uint32(p.cores), RAMBytes: p.ram, GPUs: []string(p.gpus)}
}

func (p *providerFlags) served() ([]tx.ServedModel, error) {
	var out []tx.ServedModel
	for _, m := range p.models {
		parts := strings.Split(m, ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("--model %q: want MODEL_ID:PRICE_IN:PRICE_OUT", m)
		}
		in, err := tx.ParseAmount(parts[1])
		if err != nil {
			return nil, fmt.Errorf("--model %q: input price: %w", m, err)
		}
		outP, err := tx.ParseAmount(parts[2])
		if err != nil {
			return nil, fmt.Errorf("--model %q: output price: %w", m, err)
		}
		out = append(out, tx.ServedModel{ModelID: parts[0], PriceInPerMTok: in, PriceOutPerMTok: outP})
	}
	return out, nil
}

func uintFlag(fs *flag.FlagSet, name, usage string) *uint64 { return fs.Uint64(name, 0, usage) }

func txCommands() map[string]txCommand {
	return map[string]txCommand{
		"send": {"send myc to an address", func(fs *flag.FlagSet, keysDir func() string) func() (any, error) {
			to := fs.String("to", "", "recipient address (or a key name)")
			amt := amount(fs, "amount", "amount to send")
			return func() (any, error) {
				if err := required("amount", amt); err != nil {
					return nil, err
				}
				if *to == "" {
					return nil, fmt.Errorf("--to is required")
				}
				addr, err := resolveAddress(keysDir(), *to)
				if err != nil {
					return nil, fmt.Errorf("--to: %w", err)
				}
				return tx.Send{To: addr, Amount: amt.v}, nil
			}
		}},
		"register-model": {"register a model by the sha256 of its GGUF file", func(fs *flag.FlagSet, _ func() string) func() (any, error) {
			var m tx.RegisterModel
			fs.StringVar(&m.ID, "id", "", "model id")
			fs.StringVar(&m.SHA256, "sha256", "", "lower-case hex sha256 of the GGUF file")
			fs.StringVar(&m.Architecture, "architecture", "", "architecture (e.g. llama, qwen2)")
			fs.Uint64Var(&m.Parameters, "parameters", 0, "parameter count")
			fs.StringVar(&m.Quantization, "quantization", "", "quantisation (e.g. Q8_0)")
			ctxLen := fs.Uint("context-length", 0, "context length in tokens")
			fs.StringVar(&m.License, "license", "", "licence")
			return func() (any, error) {
				m.ContextLength = uint32(*ctxLen)
				return m, nil
			}
		}},
		"register-provider": {"register as a provider with stake, endpoint, hardware and prices", func(fs *flag.FlagSet, _ func() string) func() (any, error) {
			stake := amount(fs, "stake", "stake to bond")
			var pf providerFlags
			pf.register(fs)
			return func() (any, error) {
				if err := required("stake", stake); err != nil {
					return nil, err
				}
				served, err := pf.served()
				if err != nil {
					return nil, err
				}
				return tx.RegisterProvider{Stake: stake.v, Endpoint: pf.endpoint, Hardware: pf.hardware(), Models: served}, nil
			}
		}},
		"update-provider": {"change a provider's endpoint, hardware, models or add stake", func(fs *flag.FlagSet, _ func() string) func() (any, error) {
			add := amount(fs, "add-stake", "stake to add")
			var pf providerFlags
			pf.register(fs)
			return func() (any, error) {
				served, err := pf.served()
				if err != nil {
					return nil, err
				}
				return tx.UpdateProvider{Endpoint: pf.endpoint, Hardware: pf.hardware(), Models: served, AddStake: add.v}, nil
			}
		}},
		"register-verifier": {"register as a verifier with stake", func(fs *flag.FlagSet, _ func() string) func() (any, error) {
			stake := amount(fs, "stake", "stake to bond")
			return func() (any, error) {
				if err := required("stake", stake); err != nil {
					return nil, err
				}
				return tx.RegisterVerifier{Stake: stake.v}, nil
			}
		}},
		"unbond": {"start unbonding provider or verifier stake", func(fs *flag.FlagSet, _ func() string) func() (any, error) {
			role := fs.String("role", "", "provider|verifier")
			amt := amount(fs, "amount", "stake to unbond")
			return func() (any, error) {
				if err := required("amount", amt); err != nil {
					return nil, err
				}
				if *role != tx.RoleProvider && *role != tx.RoleVerifier {
					return nil, fmt.Errorf("--role %q: want provider or verifier", *role)
				}
				return tx.Unbond{Role: *role, Amount: amt.v}, nil
			}
		}},
		"open-channel": {"lock a deposit in a payment channel to a provider", func(fs *flag.FlagSet, keysDir func() string) func() (any, error) {
			prov := fs.String("provider", "", "provider address (or a key name)")
			dep := amount(fs, "deposit", "deposit to lock")
			return func() (any, error) {
				if err := required("deposit", dep); err != nil {
					return nil, err
				}
				addr, err := resolveAddress(keysDir(), *prov)
				if err != nil {
					return nil, fmt.Errorf("--provider: %w", err)
				}
				return tx.OpenChannel{Provider: addr, Deposit: dep.v}, nil
			}
		}},
		"top-up-channel": {"add to a channel's deposit", func(fs *flag.FlagSet, _ func() string) func() (any, error) {
			id := uintFlag(fs, "channel", "channel id")
			amt := amount(fs, "amount", "amount to add")
			return func() (any, error) {
				if err := required("amount", amt); err != nil {
					return nil, err
				}
				return tx.TopUpChannel{ChannelID: *id, Amount: amt.v}, nil
			}
		}},
		"redeem-voucher": {"redeem a consumer's signed voucher (as the channel's provider)", func(fs *flag.FlagSet, _ func() string) func() (any, error) {
			raw := fs.String("voucher", "", `voucher JSON: {"chain_id":…,"channel_id":…,"amount":…,"signature":"base64"}`)
			return func() (any, error) {
				if *raw == "" {
					return nil, fmt.Errorf("--voucher is required")
				}
				var v channel.Voucher
				dec := json.NewDecoder(strings.NewReader(*raw))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&v); err != nil {
					return nil, fmt.Errorf("--voucher: %w", err)
				}
				return tx.RedeemVoucher{Voucher: v}, nil
			}
		}},
		"close-channel": {"ask to close a channel (as its consumer)", func(fs *flag.FlagSet, _ func() string) func() (any, error) {
			id := uintFlag(fs, "channel", "channel id")
			return func() (any, error) { return tx.CloseChannel{ChannelID: *id}, nil }
		}},
	}
}

func txUsage(w io.Writer) {
	cmds := allTxCommands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: mycel tx <message> --from NAME [--home DIR] [--node URL] [--output json] [message flags]\n\nmessages:")
	for _, n := range names {
		fmt.Fprintf(w, "  %-18s %s\n", n, cmds[n].summary)
	}
}

func cmdTx(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		txUsage(stderr)
		return fmt.Errorf("tx: name a message")
	}
	name, args := args[0], args[1:]
	tc, ok := allTxCommands()[name]
	if !ok {
		txUsage(stderr)
		return fmt.Errorf("tx: unknown message %q", name)
	}
	var cf chainFlags
	fs := newFlags("tx "+name, stderr)
	cf.register(fs, devnet.DefaultDir(), true)
	from := fs.String("from", "", "name of the signing key in HOME/keys")
	fee := fs.String("fee", "", "fee (default: the ledger's min_fee)")
	memo := fs.String("memo", "", "memo")
	build := tc.flags(fs, cf.keysDir)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("tx "+name, pos); err != nil {
		return err
	}
	if err := cf.validate(); err != nil {
		return fmt.Errorf("tx %s: %w", name, err)
	}
	if *from == "" {
		return fmt.Errorf("tx %s: --from is required", name)
	}
	msg, err := build()
	if err != nil {
		return fmt.Errorf("tx %s: %w", name, err)
	}
	key, err := keys.Load(cf.keysDir(), *from)
	if err != nil {
		return fmt.Errorf("tx %s: %w", name, err)
	}
	var opts []chainclient.Option
	if *fee != "" {
		f, err := tx.ParseAmount(*fee)
		if err != nil {
			return fmt.Errorf("tx %s: --fee: %w", name, err)
		}
		opts = append(opts, chainclient.WithFee(f))
	}
	c, err := chainclient.Dial(cf.rpcAddr(), opts...)
	if err != nil {
		return fmt.Errorf("tx %s: %w", name, err)
	}
	res, err := submit(ctx, c, key, *memo, msg)
	if err != nil {
		if cf.json() && res.Hash != "" {
			writeJSON(stdout, res)
		}
		return fmt.Errorf("tx %s: %w", name, err)
	}
	if cf.json() {
		return writeJSON(stdout, res)
	}
	fmt.Fprintf(stdout, "committed %s in block %d\ntx hash %s\n", name, res.Height, res.Hash)
	for _, e := range res.Events {
		var attrs []string
		for _, a := range e.Attrs {
			attrs = append(attrs, a.Key+"="+a.Value)
		}
		fmt.Fprintf(stdout, "  %s: %s\n", e.Type, strings.Join(attrs, " "))
	}
	return nil
}

// submit is Client.Submit with a memo.
func submit(ctx context.Context, c *chainclient.Client, key keys.Key, memo string, msg any) (chainclient.TxResult, error) {
	acc, err := c.Account(ctx, key.Address)
	if err != nil {
		return chainclient.TxResult{}, err
	}
	raw, err := c.Sign(ctx, key, acc.Nonce, memo, msg)
	if err != nil {
		return chainclient.TxResult{}, err
	}
	hash, err := c.Broadcast(ctx, raw)
	if err != nil {
		return chainclient.TxResult{}, err
	}
	return c.Wait(ctx, hash)
}
