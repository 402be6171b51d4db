package gateway

import (
	"context"
	"testing"

	oai "github.com/openai/openai-go"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/gateway/gatewaytest"
)

// TestInflatedReceiptPaysOnlyDelivered: a provider whose receipts claim more output tokens
// than the gateway relayed has them rejected and is paid, and the key charged, only for the
// tokens delivered; the client's usage says the same.
func TestInflatedReceiptPaysOnlyDelivered(t *testing.T) {
	for _, stream := range []bool{true, false} {
		name := map[bool]string{true: "stream", false: "whole"}[stream]
		t.Run(name, func(t *testing.T) {
			a := pricey("a")
			a.cfg.Overclaim = 5 // 13 tokens claimed for 8 delivered
			e := newEnv(t, Config{NoHedge: true}, a)
			var usage oai.CompletionUsage
			if stream {
				p := chatParams(testPrompt)
				p.StreamOptions = oai.ChatCompletionStreamOptionsParam{IncludeUsage: oai.Bool(true)}
				s := e.client().Chat.Completions.NewStreaming(context.Background(), p)
				var acc oai.ChatCompletionAccumulator
				for s.Next() {
					acc.AddChunk(s.Current())
				}
				if err := s.Err(); err != nil {
					t.Fatal(err)
				}
				usage = acc.Usage
			} else {
				got, err := e.client().Chat.Completions.New(context.Background(), chatParams(testPrompt))
				if err != nil {
					t.Fatal(err)
				}
				usage = got.Usage
			}
			if usage.CompletionTokens != 8 {
				t.Errorf("client usage: %d completion tokens, want the 8 delivered", usage.CompletionTokens)
			}
			want, _ := channel.Cost(testPromptTokens, 8, 1_000_000, 2_000_000)
			if got := e.spent(); got != want {
				t.Errorf("key spend = %d, want %d (8 tokens, not 13)", got, want)
			}
			if chs := e.gw.Channels(); len(chs) != 1 || chs[0].Owed != want {
				t.Errorf("channels %+v, want one owing %d", chs, want)
			}
			if got := counterValue(t, e.gw.metrics.receipts.WithLabelValues("rejected")); got != 1 {
				t.Errorf("rejected receipts = %v, want 1", got)
			}
			if _, n := e.receipts.Root(0); n != 0 {
				t.Errorf("%d receipts logged, want the inflated one refused", n)
			}
		})
	}
}

// TestReceiptWithinSlackIsPaid: the bound leaves room for the end-of-sequence and stop tokens
// an honest provider bills without showing them.
func TestReceiptWithinSlackIsPaid(t *testing.T) {
	a := pricey("a")
	a.cfg.Overclaim = receiptTokenSlack
	e := newEnv(t, Config{NoHedge: true}, a)
	s := e.client().Chat.Completions.NewStreaming(context.Background(), chatParams(testPrompt))
	for s.Next() {
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	want, _ := channel.Cost(testPromptTokens, 8+receiptTokenSlack, 1_000_000, 2_000_000)
	if got := e.spent(); got != want {
		t.Errorf("key spend = %d, want the receipt's %d", got, want)
	}
	if got := counterValue(t, e.gw.metrics.receipts.WithLabelValues("ok")); got != 1 {
		t.Errorf("verified receipts = %v, want 1", got)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// pricey is a provider whose prices make every token cost whole umyc (1 and 2 per token).
func pricey(name string) provSpec {
	return provSpec{name, gatewaytest.ProviderConfig{PriceIn: 1_000_000, PriceOut: 2_000_000}}
}
