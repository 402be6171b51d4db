package ledger

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/tx"
)

var update = flag.Bool("update", false, "rewrite testdata/*.txt with the actual output")

// TestScenarios runs the scenario files in testdata. Each file is a sequence of commands, each
// followed by "----" and its expected output up to a blank line; `go test -update` rewrites the
// outputs. Commands are documented in testdata/README.md. Independently of the golden output
// a command with expect=CODE fails the test when the result code differs, a rejected
// transaction must leave the state byte-for-byte unchanged, and every block must pass
// CheckInvariants.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scenario files")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScenarioFile(t, f) })
	}
}

func runScenarioFile(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	d := &driver{t: t, names: map[string]string{}}
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			out.WriteString(line + "\n")
			continue
		}
		cmdLine := i + 1
		var want []string
		if i+1 < len(lines) && lines[i+1] == "----" {
			i += 2
			for ; i < len(lines) && lines[i] != ""; i++ {
				want = append(want, lines[i])
			}
		}
		got := d.run(fmt.Sprintf("%s:%d", path, cmdLine), line)
		out.WriteString(line + "\n----\n" + got + "\n\n")
		if !*update && got != strings.Join(want, "\n") {
			t.Errorf("%s:%d: %s\n got:\n%s\nwant:\n%s", path, cmdLine, line, got, strings.Join(want, "\n"))
		}
	}
	if *update {
		res := out.String()
		for strings.Contains(res, "\n\n\n") {
			res = strings.ReplaceAll(res, "\n\n\n", "\n\n")
		}
		res = strings.TrimRight(res, "\n") + "\n"
		if err := os.WriteFile(path, []byte(res), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type driver struct {
	t     *testing.T
	l     *Ledger
	names map[string]string // name → address
}

// addr maps a name to its test address (a literal myc1… address passes through).
func (d *driver) addr(name string) string {
	if strings.HasPrefix(name, "myc1") {
		return name
	}
	a := testAddr(name)
	d.names[name] = a
	return a
}

// pretty replaces known addresses by their names.
func (d *driver) pretty(s string) string {
	names := make([]string, 0, len(d.names))
	for n := range d.names {
		names = append(names, n)
	}
	sort.Strings(names)
	var pairs []string
	for _, n := range names {
		pairs = append(pairs, d.names[n], n)
	}
	return strings.NewReplacer(pairs...).Replace(s)
}

func parseAmount(s string) (uint64, error) {
	if s == "max" {
		return 1<<64 - 1, nil
	}
	return tx.ParseAmount(s)
}

// split separates positional arguments from key=value options.
func split(fields []string) (pos []string, opts map[string]string) {
	opts = map[string]string{}
	for _, f := range fields {
		if k, v, ok := strings.Cut(f, "="); ok && !strings.HasPrefix(f, "{") {
			opts[k] = v
		} else {
			pos = append(pos, f)
		}
	}
	return pos, opts
}

func (d *driver) run(where, line string) string {
	fields := strings.Fields(line)
	cmd := fields[0]
	pos, opts := split(fields[1:])
	out, err := d.exec(where, cmd, pos, opts, line)
	if err != nil {
		d.t.Errorf("%s: %s: %v", where, line, err)
		return "error: " + err.Error()
	}
	return d.pretty(out)
}

func (d *driver) need(pos []string, n int, usage string) error {
	if len(pos) < n {
		return fmt.Errorf("usage: %s", usage)
	}
	return nil
}

func (d *driver) exec(where, cmd string, pos []string, opts map[string]string, line string) (string, error) {
	if cmd != "genesis" && d.l == nil {
		return "", fmt.Errorf("genesis first")
	}
	switch cmd {
	case "genesis":
		return d.genesis(pos, opts)
	case "block":
		n := 1
		if len(pos) > 0 {
			var err error
			if n, err = strconv.Atoi(pos[0]); err != nil {
				return "", err
			}
		}
		var b strings.Builder
		changed := 0
		for i := 0; i < n; i++ {
			evs := d.l.EndBlock()
			_, changes := d.l.Commit()
			changed += len(changes)
			if err := d.l.CheckInvariants(); err != nil {
				return "", fmt.Errorf("after block %d: %w", d.l.Height(), err)
			}
			for _, e := range evs {
				b.WriteString(formatEvent(e) + "\n")
			}
			if err := d.l.BeginBlock(Header{Height: d.l.Height() + 1, ChainID: testChain}); err != nil {
				return "", err
			}
		}
		fmt.Fprintf(&b, "committed height=%d changed_keys=%d", d.l.Height(), changed)
		return b.String(), nil
	case "slash":
		if err := d.need(pos, 3, "slash NAME ROLE BPS [reason=WORD]"); err != nil {
			return "", err
		}
		bps, err := strconv.ParseUint(pos[2], 10, 64)
		if err != nil {
			return "", err
		}
		before := d.digest()
		amt, err := d.l.Slash(d.addr(pos[0]), pos[1], bps, opts["reason"])
		if err != nil {
			if d.digest() != before {
				return "", fmt.Errorf("failed slash changed state")
			}
			return "error: " + CodeName(ErrorCode(err)) + ": " + err.Error(), nil
		}
		return fmt.Sprintf("slashed %dumyc", amt), nil
	case "query":
		if err := d.need(pos, 1, "query PATH [DATA]"); err != nil {
			return "", err
		}
		path := pos[0]
		// account/alice → account/<address of alice>
		if k, arg, ok := strings.Cut(path, "/"); ok && (k == "account" || k == "provider" || k == "verifier" ||
			k == "anchors" || k == "reputation" || k == "capacity") {
			path = k + "/" + d.addr(arg)
		}
		var data []byte
		if len(pos) > 1 {
			data = []byte(d.addr(pos[1]))
		}
		res, err := d.l.Query(path, data)
		if err != nil {
			return "error: " + CodeName(ErrorCode(err)) + ": " + err.Error(), nil
		}
		return string(res), nil
	case "balances":
		var b strings.Builder
		for i, n := range pos {
			a, err := d.l.account(d.l.block, d.addr(n))
			if err != nil {
				return "", err
			}
			if i > 0 {
				b.WriteString("\n")
			}
			fmt.Fprintf(&b, "%s: balance=%d nonce=%d", n, a.Balance, a.Nonce)
		}
		return b.String(), nil
	case "raw":
		s := strings.TrimSpace(strings.TrimPrefix(line, "raw"))
		raw, err := strconv.Unquote(s)
		if err != nil {
			return "", fmt.Errorf("raw wants a Go-quoted string: %w", err)
		}
		return d.deliver([]byte(raw), opts)
	}
	raw, err := d.buildTx(cmd, pos, opts, line)
	if err != nil {
		return "", err
	}
	return d.deliver(raw, opts)
}

func (d *driver) genesis(pos []string, opts map[string]string) (string, error) {
	g := Genesis{Params: DefaultParams()}
	amountParams := map[string]*uint64{
		"min_fee": &g.Params.MinFee, "min_provider_stake": &g.Params.MinProviderStake,
		"min_verifier_stake": &g.Params.MinVerifierStake, "emission_per_epoch": &g.Params.EmissionPerEpoch,
		"evidence_min_bond": &g.Params.EvidenceMinBond,
	}
	countParams := map[string]*uint64{
		"unbonding_blocks": &g.Params.UnbondingBlocks, "channel_challenge_blocks": &g.Params.ChannelChallengeBlocks,
		"epoch_length": &g.Params.EpochLength, "slash_fraction_bps": &g.Params.SlashFractionBps,
		"jail_epochs": &g.Params.JailEpochs, "provider_share_bps": &g.Params.ProviderShareBps,
		"bonds_alpha_bps": &g.Params.BondsAlphaBps, "clip_low_bps": &g.Params.ClipLowBps,
		"evidence_vote_blocks": &g.Params.EvidenceVoteBlocks, "evidence_reward_bps": &g.Params.EvidenceRewardBps,
		"audit_floor_bps": &g.Params.AuditFloorBps, "audit_clean_epochs": &g.Params.AuditCleanEpochs,
	}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := opts[k]
		var err error
		switch {
		case amountParams[k] != nil:
			*amountParams[k], err = parseAmount(v)
		case countParams[k] != nil:
			*countParams[k], err = strconv.ParseUint(v, 10, 64)
		case k == "models":
			for _, id := range strings.Split(v, ",") {
				g.Models = append(g.Models, testModel(id, id))
			}
		default:
			var bal uint64
			bal, err = parseAmount(v)
			g.Accounts = append(g.Accounts, GenesisAccount{Address: d.addr(k), Balance: bal})
		}
		if err != nil {
			return "", fmt.Errorf("genesis %s=%s: %w", k, v, err)
		}
	}
	d.l = New(testChain)
	if err := d.l.InitChain(Header{Height: 1, ChainID: testChain}, g); err != nil {
		return "error: " + err.Error(), nil
	}
	if err := d.l.BeginBlock(Header{Height: 1, ChainID: testChain}); err != nil {
		return "", err
	}
	return fmt.Sprintf("initial height=1 accounts=%d", len(g.Accounts)), nil
}

func testModel(id, content string) tx.RegisterModel {
	sum := sha256.Sum256([]byte(content))
	return tx.RegisterModel{ID: id, SHA256: hex.EncodeToString(sum[:]), Architecture: "llama",
		Parameters: 1_000_000, Quantization: "Q8_0", ContextLength: 2048, License: "mit"}
}

func parseServed(s string) ([]tx.ServedModel, error) {
	var out []tx.ServedModel
	for _, part := range strings.Split(s, ",") {
		f := strings.Split(part, ":")
		sm := tx.ServedModel{ModelID: f[0], PriceInPerMTok: 100, PriceOutPerMTok: 200}
		if len(f) == 3 {
			var err error
			if sm.PriceInPerMTok, err = parseAmount(f[1]); err != nil {
				return nil, err
			}
			if sm.PriceOutPerMTok, err = parseAmount(f[2]); err != nil {
				return nil, err
			}
		}
		out = append(out, sm)
	}
	return out, nil
}

// buildTx builds the signed transaction of a message command.
func (d *driver) buildTx(cmd string, pos []string, opts map[string]string, line string) ([]byte, error) {
	if len(pos) == 0 {
		return nil, fmt.Errorf("%s: want a sender", cmd)
	}
	from := pos[0]
	var m interface{ Type() string }
	var err error
	amt := func(i int) uint64 {
		if err != nil {
			return 0
		}
		if i >= len(pos) {
			err = fmt.Errorf("%s: missing argument %d", cmd, i)
			return 0
		}
		var v uint64
		v, err = parseAmount(pos[i])
		return v
	}
	id := func(i int) uint64 {
		if err != nil {
			return 0
		}
		if i >= len(pos) {
			err = fmt.Errorf("%s: missing argument %d", cmd, i)
			return 0
		}
		var v uint64
		v, err = strconv.ParseUint(pos[i], 10, 64)
		return v
	}
	arg := func(i int) string {
		if i >= len(pos) {
			if err == nil {
				err = fmt.Errorf("%s: missing argument %d", cmd, i)
			}
			return ""
		}
		return pos[i]
	}
	switch cmd {
	case "send":
		m = tx.Send{To: d.addr(arg(1)), Amount: amt(2)}
	case "register-model":
		content := arg(1)
		if c, ok := opts["content"]; ok {
			content = c
		}
		m = testModel(arg(1), content)
	case "register-provider":
		rp := tx.RegisterProvider{Stake: amt(1), Endpoint: "https://" + from + ".example/v1",
			Hardware: tx.Hardware{CPU: "test", Cores: 8, RAMBytes: 16 << 30, GPUs: []string{"RTX 4090"}}}
		if e, ok := opts["endpoint"]; ok {
			rp.Endpoint = e
		}
		if err == nil {
			rp.Models, err = parseServed(arg(2))
		}
		m = rp
	case "update-provider":
		up := tx.UpdateProvider{Endpoint: opts["endpoint"]}
		if s, ok := opts["models"]; ok {
			up.Models, err = parseServed(s)
		}
		if s, ok := opts["add-stake"]; ok && err == nil {
			up.AddStake, err = parseAmount(s)
		}
		m = up
	case "register-verifier":
		m = tx.RegisterVerifier{Stake: amt(1)}
	case "unbond":
		m = tx.Unbond{Role: arg(1), Amount: amt(2)}
	case "open-channel":
		m = tx.OpenChannel{Provider: d.addr(arg(1)), Deposit: amt(2)}
	case "top-up":
		m = tx.TopUpChannel{ChannelID: id(1), Amount: amt(2)}
	case "close-channel":
		m = tx.CloseChannel{ChannelID: id(1)}
	case "redeem":
		chID, amount := id(1), amt(2)
		if err != nil {
			return nil, err
		}
		signer, ok := opts["signer"]
		if !ok {
			ch, found, gerr := getJSON[Channel](d.l.block, keyChannel(chID))
			if gerr != nil || !found {
				return nil, fmt.Errorf("redeem: channel %d unknown; pass signer=NAME", chID)
			}
			for n, a := range d.names {
				if a == ch.Consumer {
					signer = n
				}
			}
		}
		chain := testChain
		if c, ok := opts["voucher-chain"]; ok {
			chain = c
		}
		v := channel.SignVoucher(chain, chID, amount, testKey(signer))
		if c, ok := opts["voucher-channel"]; ok { // signed for chID, presented as another
			v.ChannelID, err = strconv.ParseUint(c, 10, 64)
		}
		m = tx.RedeemVoucher{Voucher: v}
	case "anchor", "commit-seed", "reveal-seed", "audit-report", "evidence", "vote",
		"commit-weights", "reveal-weights", "capacity":
		vm, verr := d.verifyMsg(cmd, pos, opts, id, arg)
		if err == nil {
			m, err = vm, verr
		}
	case "multi":
		// multi FROM send:TO:AMOUNT…: several sends in one transaction
		var msgs []tx.Msg
		for _, part := range pos[1:] {
			f := strings.Split(part, ":")
			if len(f) != 3 || f[0] != "send" {
				return nil, fmt.Errorf("multi: want send:TO:AMOUNT, got %q", part)
			}
			a, err := parseAmount(f[2])
			if err != nil {
				return nil, err
			}
			msg, err := tx.NewMsg(tx.Send{To: d.addr(f[1]), Amount: a})
			if err != nil {
				return nil, err
			}
			msgs = append(msgs, msg)
		}
		return d.sign(from, msgs, opts)
	case "msg":
		// msg FROM TYPE JSON: an arbitrary (e.g. unknown) message
		rest := line[strings.Index(line, arg(1))+len(arg(1)):]
		if i, j := strings.Index(rest, "{"), strings.LastIndex(rest, "}"); i >= 0 && j > i {
			rest = rest[i : j+1]
		}
		return d.sign(from, []tx.Msg{{Type: arg(1), Value: json.RawMessage(rest)}}, opts)
	default:
		return nil, fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		return nil, err
	}
	msg, err := tx.NewMsg(m)
	if err != nil {
		return nil, err
	}
	return d.sign(from, []tx.Msg{msg}, opts)
}

// sign signs msgs from a name with the next nonce and min fee unless opts override them, and
// applies mutate=sig|pubkey to produce broken transactions.
func (d *driver) sign(from string, msgs []tx.Msg, opts map[string]string) ([]byte, error) {
	acct, err := d.l.account(d.l.block, d.addr(from))
	if err != nil {
		return nil, err
	}
	b := tx.Body{ChainID: testChain, Sender: d.addr(from), Nonce: acct.Nonce, Fee: d.l.params.MinFee, Msgs: msgs, Memo: opts["memo"]}
	if s, ok := opts["nonce"]; ok {
		if b.Nonce, err = strconv.ParseUint(s, 10, 64); err != nil {
			return nil, err
		}
	}
	if s, ok := opts["fee"]; ok {
		if b.Fee, err = parseAmount(s); err != nil {
			return nil, err
		}
	}
	if s, ok := opts["chain"]; ok {
		b.ChainID = s
	}
	signer := from
	d.addr("mallory")
	if s, ok := opts["signer"]; ok && len(msgs) == 1 && msgs[0].Type != tx.TypeRedeemVoucher {
		signer = s
	}
	t, err := tx.Sign(b, testKey(signer))
	if err != nil {
		return nil, err
	}
	switch opts["mutate"] {
	case "":
	case "sig":
		t.Signature[0] ^= 0x01
	case "pubkey":
		t.PubKey = testKey("mallory").Public().(ed25519.PublicKey)
	default:
		return nil, fmt.Errorf("unknown mutate=%s", opts["mutate"])
	}
	return tx.Encode(t)
}

// digest hashes the uncommitted block writes and the check-state writes.
func (d *driver) digest() string { return stateDigest(d.l) }

// deliver runs raw through CheckTx and DeliverTx and formats the result.
func (d *driver) deliver(raw []byte, opts map[string]string) (string, error) {
	before := d.digest()
	cres := d.l.CheckTx(raw)
	mid := d.digest()
	if cres.Code != CodeOK && mid != before {
		return "", fmt.Errorf("rejected CheckTx changed the check-state")
	}
	res := d.l.DeliverTx(raw)
	if res.Code != CodeOK && d.digest() != mid {
		return "", fmt.Errorf("rejected DeliverTx changed the state")
	}
	if want, ok := opts["expect"]; ok && CodeName(res.Code) != want {
		return "", fmt.Errorf("code %s (%s), expect=%s", CodeName(res.Code), res.Log, want)
	}
	var b strings.Builder
	if res.Code == CodeOK {
		b.WriteString("ok")
		for _, e := range res.Events {
			if e.Type == "tx" {
				continue
			}
			b.WriteString("\n" + formatEvent(e))
		}
	} else {
		fmt.Fprintf(&b, "code=%s: %s", CodeName(res.Code), res.Log)
	}
	if cres.Code != res.Code {
		fmt.Fprintf(&b, "\ncheck-tx differs: code=%s: %s", CodeName(cres.Code), cres.Log)
	}
	return b.String(), nil
}

func formatEvent(e Event) string {
	var b strings.Builder
	b.WriteString(e.Type)
	for _, a := range e.Attrs {
		fmt.Fprintf(&b, " %s=%s", a.Key, a.Value)
	}
	return b.String()
}
