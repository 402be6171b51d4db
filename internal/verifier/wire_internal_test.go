package verifier

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mycel-network/mycel/internal/address"
	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/keys"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/openai"
)

// TestReadStream reads a streamed answer written the way the provider
// writes one (content chunks with logprobs, the finish chunk, the receipt
// event, [DONE]): the shopper gets the same text, token bytes and receipt
// as from a non-streamed answer, so re-checks work on streamed answers.
func TestReadStream(t *testing.T) {
	rc := channel.Receipt{ChainID: "c", RequestID: "r1", Provider: "p", OutputHash: "h", TokensOut: 3, FinishReason: "stop"}
	lp := func(tok string, v float64) *openai.ChatLogprobs {
		bs := []int{}
		for _, b := range []byte(tok) {
			bs = append(bs, int(b))
		}
		return &openai.ChatLogprobs{Content: []openai.TokenLogprob{{Token: tok, Logprob: v, Bytes: bs}}}
	}
	for _, withLP := range []bool{true, false} {
		rec := httptest.NewRecorder()
		sse, err := openai.NewSSEWriter(rec)
		if err != nil {
			t.Fatal(err)
		}
		for i, tok := range []string{"Hel", "lo", " Go"} {
			c := openai.ChatChunkChoice{Delta: openai.ChatDelta{Content: tok}}
			if withLP {
				c.Logprobs = lp(tok, -float64(i)-0.5)
			}
			if err := sse.WriteJSON(openai.ChatCompletionChunk{Object: openai.ObjectChatCompletionChunk, Choices: []openai.ChatChunkChoice{c}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := sse.WriteJSON(openai.ChatCompletionChunk{Object: openai.ObjectChatCompletionChunk,
			Choices: []openai.ChatChunkChoice{{FinishReason: openai.Ptr("stop")}}}); err != nil {
			t.Fatal(err)
		}
		if err := sse.WriteJSON(channel.ReceiptEvent{Object: channel.ReceiptEventObject, Receipt: rc}); err != nil {
			t.Fatal(err)
		}
		if err := sse.WriteDone(); err != nil {
			t.Fatal(err)
		}
		text, finish, entries, haveLP, got, err := readStream(bytes.NewReader(rec.Body.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		if text != "Hello Go" || finish != "stop" || haveLP != withLP {
			t.Errorf("logprobs %t: text %q, finish %q, logprobs %t", withLP, text, finish, haveLP)
		}
		if diff := cmp.Diff(rc, got); diff != "" {
			t.Errorf("receipt (-want +got):\n%s", diff)
		}
		if withLP {
			want := []LogprobEntry{{"Hel", -0.5, []int{72, 101, 108}}, {"lo", -1.5, []int{108, 111}}, {" Go", -2.5, []int{32, 71, 111}}}
			if diff := cmp.Diff(want, entries); diff != "" {
				t.Errorf("logprobs (-want +got):\n%s", diff)
			}
		}
	}
	// A stream cut before its receipt is an error, not an answer.
	if _, _, _, _, _, err := readStream(bytes.NewReader([]byte("data: {\"choices\":[]}\n\ndata: [DONE]\n\n"))); err == nil {
		t.Error("stream without a receipt: no error")
	}
}

// fixedLedger is a ShopperLedger stuck in one epoch, without accounts.
type fixedLedger struct{ epoch uint64 }

func (l fixedLedger) Epoch(context.Context) (ledger.EpochView, error) {
	return ledger.EpochView{Epoch: ledger.Epoch{Number: l.epoch}}, nil
}
func (fixedLedger) Balance(context.Context, string) (uint64, error) { return 0, nil }
func (fixedLedger) Channels(context.Context, string) ([]ledger.Channel, error) {
	return nil, nil
}
func (fixedLedger) MinFee(context.Context) (uint64, error) { return 1000, nil }
func (fixedLedger) Submit(context.Context, keys.Key, ...any) error {
	return fmt.Errorf("fixed ledger: no transactions")
}

// TestHTTPShopperPaysFromShopperAccount sends shopper requests to a provider
// stand-in on 127.0.0.1: the voucher is signed by the epoch's derived shopper
// account, not the verifier's key, the body asks for streaming and logprobs
// exactly as drawn, and streamed and non-streamed answers come back the same.
func TestHTTPShopperPaysFromShopperAccount(t *testing.T) {
	seed := sha256.Sum256([]byte("verifier"))
	priv := ed25519.NewKeyFromSeed(seed[:])
	vk := keys.Key{Name: "verifier", Address: address.FromPubKey(priv.Public().(ed25519.PublicKey)), PrivKey: priv}
	payer := EpochShopperKey(vk, 5)
	rc := channel.Receipt{ChainID: "c", RequestID: "r1", Provider: "p", TokensOut: 2, FinishReason: "stop", Cumulative: 7}
	var sawStream []bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := channel.DecodeVoucherHeader(r.Header.Get("X-Mycel-Voucher"))
		if err != nil || v.Verify(payer.PubKey()) != nil || v.Verify(vk.PubKey()) == nil {
			http.Error(w, "voucher not signed by the shopper account", http.StatusPaymentRequired)
			return
		}
		var body struct {
			Stream   bool `json:"stream"`
			Logprobs bool `json:"logprobs"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Logprobs {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		sawStream = append(sawStream, body.Stream)
		if !body.Stream {
			h, _ := channel.EncodeHeader(rc)
			w.Header().Set("X-Mycel-Receipt", h)
			fmt.Fprint(w, `{"choices":[{"message":{"content":"Hi Go"},"finish_reason":"stop"}]}`)
			return
		}
		sse, err := openai.NewSSEWriter(w)
		if err != nil {
			t.Error(err)
			return
		}
		for _, c := range []string{"Hi", " Go"} {
			_ = sse.WriteJSON(openai.ChatCompletionChunk{Choices: []openai.ChatChunkChoice{{Delta: openai.ChatDelta{Content: c}}}})
		}
		_ = sse.WriteJSON(openai.ChatCompletionChunk{Choices: []openai.ChatChunkChoice{{FinishReason: openai.Ptr("stop")}}})
		_ = sse.WriteJSON(channel.ReceiptEvent{Object: channel.ReceiptEventObject, Receipt: rc})
		_ = sse.WriteDone()
	}))
	defer srv.Close()
	s := &HTTPShopper{Chain: LedgerChain{Key: vk}, Ledger: fixedLedger{5}, ChainID: "c", HTTP: srv.Client(),
		channels: map[string]*shopChannel{"5/p": {id: 1}}}
	for _, stream := range []bool{false, true} {
		got, err := s.Shop(context.Background(), ledger.ProviderView{Provider: ledger.Provider{Address: "p", Endpoint: srv.URL}},
			"m", ShopperParams{PoolIndex: 1, MaxTokens: 8, Stream: stream})
		if err != nil {
			t.Fatalf("stream %t: %v", stream, err)
		}
		if got.Answer.Text != "Hi Go" || got.Answer.FinishReason != "stop" || got.Receipt.RequestID != "r1" || got.Params.Stream != stream {
			t.Errorf("stream %t: got %+v", stream, got)
		}
	}
	if diff := cmp.Diff([]bool{false, true}, sawStream); diff != "" {
		t.Errorf("stream flags seen by the provider (-want +got):\n%s", diff)
	}
	if s.channels["5/p"].delivered != 7 {
		t.Errorf("channel delivered %d, want the receipt's cumulative 7", s.channels["5/p"].delivered)
	}
}
