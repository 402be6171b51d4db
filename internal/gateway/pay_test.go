package gateway

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/mycel-network/mycel/internal/gateway/gatewaytest"
)

func TestPayerVouchers(t *testing.T) {
	l := gatewaytest.NewLedger("c")
	k, addr := gatewaytest.Key("consumer")
	_, prov := gatewaytest.Key("provider")
	p := newPayer(l, k, addr, 1000)
	ctx := context.Background()
	now := time.Unix(1, 0)
	pub := k.Public().(ed25519.PublicKey)

	v1, err := p.voucher(ctx, prov, 100, now)
	if err != nil {
		t.Fatal(err)
	}
	if v1.ChannelID != 1 || v1.Amount != 0 || v1.Verify(pub) != nil {
		t.Fatalf("first voucher %+v: want channel 1, amount 0, valid signature", v1)
	}
	p.bill(prov, 300)
	v2, _ := p.voucher(ctx, prov, 100, now)
	if v2.Amount != 300 || v2.Verify(pub) != nil {
		t.Errorf("voucher after 300 owed: %+v", v2)
	}
	// Owed 300 of a 1000 deposit: a request of up to 800 needs a top-up.
	if _, err := p.voucher(ctx, prov, 800, now); err != nil {
		t.Fatal(err)
	}
	opened, topups := l.Counts()
	if opened != 1 || topups != 1 {
		t.Errorf("opened %d, topped up %d: want 1 and 1", opened, topups)
	}
	if chs := l.Channels(); chs[0].Deposit != 2600 { // 1000 + max(1000, 2·800)
		t.Errorf("deposit %d, want 2600", chs[0].Deposit)
	}
	// A claim within slack is adopted, beyond it refused, unless attempts without a receipt
	// could have cost that much.
	rec := func(claimed, slack uint64) bool { ok, _ := p.reconcile(prov, claimed, slack); return ok }
	if !rec(350, 100) || rec(1000, 100) {
		t.Error("reconcile: want 350 adopted (slack 100) and 1000 refused")
	}
	p.uncertain(prov, 600)
	if ok, beyond := p.reconcile(prov, 1000, 100); !ok || beyond != 50 {
		t.Errorf("reconcile 1000 after 600 uncertain: adopted %t, %d beyond the uncertainty; want adopted, 50", ok, beyond)
	}
	if rec(1200, 100) {
		t.Error("reconcile: want 1200 refused (uncertainty used up)")
	}
	// Idle channels are handed back for closing and forgotten.
	if got := p.idle(now.Add(time.Second)); len(got) != 1 || got[0].Owed != 1000 {
		t.Errorf("idle = %+v, want the channel owing 1000", got)
	}
	if p.channelID(prov) != 0 {
		t.Error("idle channel still known")
	}
}
