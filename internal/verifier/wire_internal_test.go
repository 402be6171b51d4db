package verifier

import (
	"bytes"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mycel-network/mycel/internal/channel"
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
