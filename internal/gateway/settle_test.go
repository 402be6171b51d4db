package gateway

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	oai "github.com/openai/openai-go"
	dto "github.com/prometheus/client_model/go"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/gateway/gatewaytest"
)

// TestReceiptsSettleAfterResponse: the client gets its whole answer while the receipt's
// verification is held back; only then is the receipt verified, and a bad one (a wrong
// signature on a receipt that overclaims 5 tokens) is not paid: the provider gets what the
// gateway saw delivered, the key is charged that, and the receipt is neither logged nor paid.
func TestReceiptsSettleAfterResponse(t *testing.T) {
	good, _ := channel.Cost(testPromptTokens, 8, 1000, 2000)
	tests := []struct {
		name       string
		stream     bool
		bad        bool
		wantSpend  uint64
		wantLogged int
		wantResult string // receipts_total label counted once
	}{
		{"whole good", false, false, good, 1, "ok"},
		{"whole bad", false, true, good, 0, "rejected"},
		{"stream good", true, false, good, 1, "ok"},
		{"stream bad", true, true, good, 0, "rejected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := cheap("a")
			if tt.bad {
				a.cfg.BadSignature, a.cfg.Overclaim = true, 5
			}
			e := newEnv(t, Config{}, a)
			release := make(chan struct{})
			e.gw.settleHook = func() { <-release }
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var content string
			if tt.stream {
				stream := e.client().Chat.Completions.NewStreaming(ctx, chatParams(testPrompt))
				var acc oai.ChatCompletionAccumulator
				for stream.Next() {
					acc.AddChunk(stream.Current())
				}
				if err := stream.Err(); err != nil {
					t.Fatal(err)
				}
				content = acc.Choices[0].Message.Content
			} else {
				got, err := e.client().Chat.Completions.New(ctx, chatParams(testPrompt))
				if err != nil {
					t.Fatal(err)
				}
				content = got.Choices[0].Message.Content
			}
			if content != answer {
				t.Errorf("content %q, want %q", content, answer)
			}
			// The answer is complete; its receipt is not accounted yet.
			short, cancelShort := context.WithTimeout(ctx, 10*time.Millisecond)
			err := e.gw.WaitSettled(short)
			cancelShort()
			if err == nil {
				t.Fatal("WaitSettled returned while the receipt's verification was held back")
			}
			if got := e.keySpent(); got != 0 {
				t.Errorf("spend %d before the receipt was verified, want 0", got)
			}
			close(release)
			e.settled()
			type result struct {
				Spend, Owed uint64
				Logged      int
				Counted     float64
				Voucher     uint64 // the pre-signed voucher's amount
			}
			c := e.gw.pay.channel(e.addrs["a"])
			c.mu.Lock()
			v := c.last
			c.mu.Unlock()
			_, n := e.receipts.Root(0)
			var owed uint64
			for _, ch := range e.gw.Channels() {
				owed += ch.Owed
			}
			got := result{e.spent(), owed, n, receiptsCounted(t, e.gw, tt.wantResult), v.Amount}
			want := result{tt.wantSpend, tt.wantSpend, tt.wantLogged, 1, tt.wantSpend}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("after settling (-want +got):\n%s", diff)
			}
		})
	}
}

// keySpent is spent without waiting for the receipts being verified.
func (e *env) keySpent() uint64 {
	ks, err := e.keys.List()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, k := range ks {
		if k.ID == e.keyID {
			return k.SpentUmyc
		}
	}
	return 0
}

// TestPayerPresignAndDrain: while a receipt is pending, drain waits for it; once it is
// verified the next voucher is already signed for the new amount and voucher returns it
// without signing again.
func TestPayerPresignAndDrain(t *testing.T) {
	l := gatewaytest.NewLedger("c")
	k, addr := gatewaytest.Key("consumer")
	_, prov := gatewaytest.Key("provider")
	p := newPayer(l, k, addr, 1000)
	ctx := context.Background()
	now := time.Unix(1, 0)
	pub := k.Public().(ed25519.PublicKey)
	if _, err := p.voucher(ctx, prov, 100, now); err != nil {
		t.Fatal(err)
	}
	pr := p.expect(prov)
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	if err := p.drain(short, prov); err == nil {
		t.Error("drain returned while a receipt was pending")
	}
	cancel()
	drained := make(chan error, 1)
	go func() { drained <- p.drain(ctx, prov) }()
	p.bill(prov, 300) // what the receipt's settlement adds
	p.verified(ctx, prov, pr)
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	c := p.channel(prov)
	c.mu.Lock()
	pre := c.last
	c.mu.Unlock()
	if pre.Amount != 300 || pre.Verify(pub) != nil {
		t.Fatalf("pre-signed voucher %+v: want amount 300, valid", pre)
	}
	v, err := p.voucher(ctx, prov, 100, now)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(pre, v); diff != "" || &v.Signature[0] != &pre.Signature[0] {
		t.Errorf("voucher signed again instead of the pre-signed one (-want +got):\n%s", diff)
	}
	// With another receipt still pending, no voucher is pre-signed for an amount about to change.
	pr1, pr2 := p.expect(prov), p.expect(prov)
	p.bill(prov, 50)
	p.verified(ctx, prov, pr1)
	c.mu.Lock()
	mid := c.last.Amount
	c.mu.Unlock()
	p.bill(prov, 50)
	p.verified(ctx, prov, pr2)
	c.mu.Lock()
	end := c.last.Amount
	c.mu.Unlock()
	if mid != 300 || end != 400 {
		t.Errorf("pre-signed amounts %d then %d, want 300 (one pending) then 400", mid, end)
	}
}

// receiptsCounted reads mycel_gateway_receipts_total{result}.
func receiptsCounted(t *testing.T, g *Gateway, result string) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.metrics.receipts.WithLabelValues(result).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestSettleGroupLimit: tryAdd refuses beyond the limit, wait returns once all are done.
func TestSettleGroupLimit(t *testing.T) {
	var s settleGroup
	if err := s.wait(context.Background()); err != nil {
		t.Fatalf("wait with nothing pending: %v", err)
	}
	got := []bool{s.tryAdd(2), s.tryAdd(2), s.tryAdd(2)}
	if diff := cmp.Diff([]bool{true, true, false}, got); diff != "" {
		t.Errorf("tryAdd (-want +got):\n%s", diff)
	}
	s.done()
	short, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := s.wait(short); err == nil {
		t.Error("wait returned with one still pending")
	}
	s.done()
	if err := s.wait(context.Background()); err != nil {
		t.Errorf("wait after all done: %v", err)
	}
}
