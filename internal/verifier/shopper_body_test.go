package verifier_test

import (
	"encoding/json"
	"testing"

	"github.com/mycel-network/mycel/internal/verifier"
)

// TestRequestBodyAlwaysAsksLogprobs: an audit is only sound with the
// provider's own token ids, which come with logprobs. Without them the
// re-check saw an empty token list and accused every honest provider of
// inflating its token count.
func TestRequestBodyAlwaysAsksLogprobs(t *testing.T) {
	sawUnasked := false
	for i := 0; i < 200; i++ {
		p := verifier.DrawParams(7, i)
		sawUnasked = sawUnasked || !p.Logprobs
		var body struct {
			Logprobs *bool `json:"logprobs"`
		}
		if err := json.Unmarshal(verifier.RequestBody("mycel-ref", p, "", "hello"), &body); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if body.Logprobs == nil || !*body.Logprobs {
			t.Fatalf("request %d (params logprobs=%v): body does not ask for logprobs", i, p.Logprobs)
		}
	}
	if !sawUnasked {
		t.Fatal("the draw never produced a request whose client would not ask for logprobs: the test proves nothing")
	}
}
