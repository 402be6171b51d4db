package tx

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mycel-network/mycel/internal/address"
	"github.com/mycel-network/mycel/internal/channel"
)

func testKey(name string) ed25519.PrivateKey {
	s := sha256.Sum256([]byte(name))
	return ed25519.NewKeyFromSeed(s[:])
}

func addr(name string) string { return address.FromPubKey(testKey(name).Public().(ed25519.PublicKey)) }

func sampleTx(t testing.TB) (Tx, []byte) {
	t.Helper()
	b := Body{ChainID: "mycel-test", Sender: addr("alice"), Nonce: 3, Fee: 1000, Memo: "hi <there> & co"}
	for _, m := range []interface{ Type() string }{
		Send{To: addr("bob"), Amount: 5},
		RedeemVoucher{Voucher: channel.SignVoucher("mycel-test", 1, 9, testKey("bob"))},
	} {
		msg, err := NewMsg(m)
		if err != nil {
			t.Fatal(err)
		}
		b.Msgs = append(b.Msgs, msg)
	}
	tx, err := Sign(b, testKey("alice"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := Encode(tx)
	if err != nil {
		t.Fatal(err)
	}
	return tx, raw
}

func TestRoundTripAndVerify(t *testing.T) {
	want, raw := sampleTx(t)
	got, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Decode(Encode(tx)) (-want +got):\n%s", diff)
	}
	if err := got.VerifySignature(); err != nil {
		t.Errorf("VerifySignature = %v", err)
	}
	if err := got.ValidateBasic(); err != nil {
		t.Errorf("ValidateBasic = %v", err)
	}
	if !bytes.HasPrefix(SignBytes(got.Body), []byte(SignDomain)) {
		t.Error("sign bytes lack the domain prefix")
	}
	if len(Hash(raw)) != 32 {
		t.Error("hash is not 32 bytes")
	}
}

func TestVerifySignatureRejects(t *testing.T) {
	base, _ := sampleTx(t)
	mutate := map[string]func(*Tx){
		"body changed":     func(t *Tx) { t.Body.Nonce++ },
		"signature flip":   func(t *Tx) { t.Signature = bytes.Clone(t.Signature); t.Signature[0] ^= 1 },
		"short signature":  func(t *Tx) { t.Signature = t.Signature[:63] },
		"other pubkey":     func(t *Tx) { t.PubKey = testKey("bob").Public().(ed25519.PublicKey) },
		"short pubkey":     func(t *Tx) { t.PubKey = t.PubKey[:31] },
		"sender changed":   func(t *Tx) { t.Body.Sender = addr("bob") },
		"chain id changed": func(t *Tx) { t.Body.ChainID = "other" },
	}
	for name, f := range mutate {
		t.Run(name, func(t *testing.T) {
			tx := base
			tx.Body.Msgs = append([]Msg(nil), base.Body.Msgs...)
			f(&tx)
			if err := tx.VerifySignature(); !errors.Is(err, ErrSignature) {
				t.Errorf("VerifySignature = %v, want ErrSignature", err)
			}
		})
	}
}

func TestDecodeStrict(t *testing.T) {
	_, raw := sampleTx(t)
	s := string(raw)
	tests := []struct {
		name string
		raw  string
		want error
	}{
		{"trailing newline", s + "\n", ErrMalformed},
		{"trailing value", s + "{}", ErrMalformed},
		{"leading space", " " + s, ErrMalformed},
		{"unknown field", strings.Replace(s, `{"body":`, `{"x":1,"body":`, 1), ErrMalformed},
		{"field case", strings.Replace(s, `{"body":`, `{"Body":`, 1), ErrMalformed},
		{"duplicate field", strings.Replace(s, `"nonce":3`, `"nonce":3,"nonce":3`, 1), ErrMalformed},
		{"reordered fields", strings.Replace(s, `"nonce":3,"fee":1000`, `"fee":1000,"nonce":3`, 1), ErrMalformed},
		{"unescaped html", strings.Replace(s, `\u003cthere\u003e`, `<there>`, 1), ErrMalformed},
		{"negative nonce", strings.Replace(s, `"nonce":3`, `"nonce":-3`, 1), ErrMalformed},
		{"float nonce", strings.Replace(s, `"nonce":3`, `"nonce":3.0`, 1), ErrMalformed},
		{"overflow fee", strings.Replace(s, `"fee":1000`, `"fee":18446744073709551616`, 1), ErrMalformed},
		{"empty memo explicit", strings.Replace(s, `"memo":"hi \u003cthere\u003e \u0026 co"`, `"memo":""`, 1), ErrMalformed},
		{"not json", "garbage", ErrMalformed},
		{"empty", "", ErrMalformed},
		{"invalid utf8", s[:20] + "\xff" + s[20:], ErrMalformed},
		{"too large", s + strings.Repeat(" ", MaxTxBytes), ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.raw == s {
				t.Fatal("mutation did not apply")
			}
			_, err := Decode([]byte(tt.raw))
			if !errors.Is(err, tt.want) {
				t.Errorf("Decode = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestMsgDecode(t *testing.T) {
	send := Send{To: addr("bob"), Amount: 5}
	m, err := NewMsg(send)
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Decode()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(any(send), got); diff != "" {
		t.Errorf("Decode (-want +got):\n%s", diff)
	}
	tests := []struct {
		name string
		msg  Msg
		want error
	}{
		{"unknown type", Msg{Type: "frobnicate", Value: []byte(`{}`)}, ErrUnknownMsg},
		{"unknown field", Msg{Type: TypeSend, Value: []byte(`{"to":"x","amount":1,"extra":2}`)}, ErrMalformed},
		{"reordered", Msg{Type: TypeSend, Value: []byte(`{"amount":1,"to":"x"}`)}, ErrMalformed},
		{"wrong type", Msg{Type: TypeSend, Value: []byte(`{"to":1,"amount":1}`)}, ErrMalformed},
		{"null", Msg{Type: TypeSend, Value: []byte(`null`)}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.msg.Decode(); !errors.Is(err, tt.want) {
				t.Errorf("Decode = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestValidateBasic(t *testing.T) {
	okModel := RegisterModel{ID: "qwen2.5:0.5b-q8_0", SHA256: strings.Repeat("ab", 32), Architecture: "qwen2",
		Parameters: 500_000_000, Quantization: "Q8_0", ContextLength: 4096, License: "apache-2.0"}
	okServed := []ServedModel{{ModelID: okModel.ID, PriceInPerMTok: 10, PriceOutPerMTok: 20}}
	okProv := RegisterProvider{Stake: 1, Endpoint: "https://p.example:8443/v1", Models: okServed}
	tests := []struct {
		name string
		m    Message
		ok   bool
	}{
		{"send ok", Send{To: addr("bob"), Amount: 1}, true},
		{"send zero", Send{To: addr("bob")}, false},
		{"send bad address", Send{To: "myc1xyz", Amount: 1}, false},
		{"model ok", okModel, true},
		{"model bad id", func() RegisterModel { m := okModel; m.ID = "Qwen"; return m }(), false},
		{"model long id", func() RegisterModel { m := okModel; m.ID = strings.Repeat("a", 129); return m }(), false},
		{"model bad hash", func() RegisterModel { m := okModel; m.SHA256 = strings.Repeat("AB", 32); return m }(), false},
		{"model zero context", func() RegisterModel { m := okModel; m.ContextLength = 0; return m }(), false},
		{"provider ok", okProv, true},
		{"provider ftp endpoint", func() RegisterProvider { p := okProv; p.Endpoint = "ftp://x"; return p }(), false},
		{"provider no host", func() RegisterProvider { p := okProv; p.Endpoint = "http://"; return p }(), false},
		{"provider no models", func() RegisterProvider { p := okProv; p.Models = nil; return p }(), false},
		{"provider dup models", func() RegisterProvider { p := okProv; p.Models = append(okServed, okServed...); return p }(), false},
		{"provider zero stake", func() RegisterProvider { p := okProv; p.Stake = 0; return p }(), false},
		{"update nothing", UpdateProvider{}, false},
		{"update stake", UpdateProvider{AddStake: 1}, true},
		{"verifier ok", RegisterVerifier{Stake: 1}, true},
		{"unbond bad role", Unbond{Role: "validator", Amount: 1}, false},
		{"unbond ok", Unbond{Role: RoleVerifier, Amount: 1}, true},
		{"open ok", OpenChannel{Provider: addr("p"), Deposit: 1}, true},
		{"open zero", OpenChannel{Provider: addr("p")}, false},
		{"topup zero id", TopUpChannel{Amount: 1}, false},
		{"redeem ok", RedeemVoucher{Voucher: channel.Voucher{ChainID: "c", ChannelID: 1, Amount: 1}}, true},
		{"redeem no chain", RedeemVoucher{Voucher: channel.Voucher{ChannelID: 1, Amount: 1}}, false},
		{"close zero", CloseChannel{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.m.ValidateBasic()
			if tt.ok && err != nil {
				t.Errorf("ValidateBasic = %v, want nil", err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalid) {
				t.Errorf("ValidateBasic = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestAmounts(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"5myc", 5_000_000, true},
		{"1.5myc", 1_500_000, true},
		{"0.000001myc", 1, true},
		{"5000000umyc", 5_000_000, true},
		{"18446744073709551615umyc", 1<<64 - 1, true},
		{"18446744073709551616umyc", 0, false},
		{"18446744073709myc", 18446744073709_000_000, true},
		{"18446744073710myc", 0, false},
		{"1.0000001myc", 0, false},
		{"-5myc", 0, false},
		{"+5myc", 0, false},
		{"5", 0, false},
		{"myc", 0, false},
		{".5myc", 0, false},
		{"1.myc", 0, false},
		{"5 myc", 0, false},
		{"5MYC", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseAmount(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseAmount(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	for _, u := range []uint64{0, 1, 999_999, 1_000_000, 1_500_000, 1<<64 - 1} {
		s := FormatAmount(u)
		back, err := ParseAmount(s)
		if err != nil || back != u {
			t.Errorf("ParseAmount(FormatAmount(%d) = %q) = %d, %v", u, s, back, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	_, raw := sampleTx(f)
	f.Add(raw)
	f.Add([]byte(`{"body":{"chain_id":"","sender":"","nonce":0,"fee":0,"msgs":null},"pub_key":null,"signature":null}`))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tx, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Encode(tx)
		if err != nil {
			t.Fatalf("decoded tx does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("decode→encode not stable:\n in %q\nout %q", b, again)
		}
		_ = tx.ValidateBasic()
		_ = tx.VerifySignature()
		for _, m := range tx.Body.Msgs {
			_, _ = m.Decode()
		}
	})
}
