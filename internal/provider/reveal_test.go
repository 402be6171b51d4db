package provider

import (
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/openai"
	"github.com/mycel-network/mycel/internal/provider/reveal"
)

// getReveal asks for the reveal of reqID signed by k ("" header when k is nil).
func (h *harness) getReveal(reqID string, k ed25519.PrivateKey) (int, reveal.Response, *openai.Error) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, h.srv.URL+reveal.Path(reqID), nil)
	if err != nil {
		h.t.Fatal(err)
	}
	if k != nil {
		req.Header.Set(reveal.Header, reveal.Sign(testChain, h.prov, reqID, k))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, reveal.Response{}, openai.ParseError(resp.StatusCode, b)
	}
	var out reveal.Response
	if err := json.Unmarshal(b, &out); err != nil {
		h.t.Fatalf("decode reveal %s: %v", b, err)
	}
	return resp.StatusCode, out, nil
}

// TestReveal: the consumer who paid for a request (without logprobs) gets the ids and
// logprobs that hash to its receipt's commitment, signed by the provider's key, after a
// restart too; another key gets a
// 403, an unknown request a 404, a request without signature a 401. Two consumers that
// chose the same request id each get their own.
func TestReveal(t *testing.T) {
	h := newHarness(t, nil)
	h.openChannel(1, 1_000_000)
	bobKey, bob := testKey("bob")
	h.chain.SetPubKey(bob, bobKey.Public().(ed25519.PublicKey))
	h.chain.SetChannel(ledgerChannel(2, bob, h.prov, 1_000_000))
	bobVoucher, _ := channel.EncodeHeader(channel.SignVoucher(testChain, 2, 0, bobKey))

	code, cc, rcA, e, _ := h.chat(call{body: chatBody(12, ""), voucher: h.voucher(1, 0), reqID: "shared-id"})
	if code != http.StatusOK {
		t.Fatalf("alice: %d %v", code, e)
	}
	if cc.Choices[0].Logprobs != nil {
		t.Fatal("answer carries logprobs it was not asked for")
	}
	code, _, rcB, e, _ := h.chat(call{body: chatBody(7, `,"temperature":1`), voucher: bobVoucher, reqID: "shared-id"})
	if code != http.StatusOK {
		t.Fatalf("bob: %d %v", code, e)
	}
	if rcA.LogprobsCommitment == rcB.LogprobsCommitment {
		t.Fatal("test needs two different commitments")
	}
	carolKey, _ := testKey("carol")

	check := func(when string) {
		t.Helper()
		for _, c := range []struct {
			name string
			k    ed25519.PrivateKey
			rc   channel.Receipt
		}{{"alice", h.aliceKey, rcA}, {"bob", bobKey, rcB}} {
			code, got, e := h.getReveal("shared-id", c.k)
			if code != http.StatusOK {
				t.Fatalf("%s: %s: %d %v", when, c.name, code, e)
			}
			if got.RequestID != "shared-id" || uint64(len(got.IDs)) != c.rc.TokensOut || len(got.Logprobs) != len(got.IDs) {
				t.Fatalf("%s: %s: reveal %+v for %d tokens", when, c.name, got, c.rc.TokensOut)
			}
			if channel.LogprobsCommitment(got.IDs, got.Float32s()) != c.rc.LogprobsCommitment {
				t.Fatalf("%s: %s: revealed values do not hash to the receipt's commitment", when, c.name)
			}
			if err := got.Verify(testChain, h.prov, h.provKey.Public().(ed25519.PublicKey)); err != nil {
				t.Fatalf("%s: %s: reveal signature: %v", when, c.name, err)
			}
			if err := got.Verify(testChain, h.prov, h.aliceKey.Public().(ed25519.PublicKey)); err == nil {
				t.Fatalf("%s: %s: reveal signature verifies under the consumer's key", when, c.name)
			}
		}
		if code, _, e := h.getReveal("shared-id", carolKey); code != http.StatusForbidden || e == nil || e.Type != openai.TypePermission {
			t.Errorf("%s: another key: %d %v, want 403 permission_error", when, code, e)
		}
		if code, _, e := h.getReveal("no-such-request", h.aliceKey); code != http.StatusNotFound || e == nil {
			t.Errorf("%s: unknown request: %d %v, want 404", when, code, e)
		}
		if code, _, e := h.getReveal("shared-id", nil); code != http.StatusUnauthorized || e == nil {
			t.Errorf("%s: no signature: %d %v, want 401", when, code, e)
		}
	}
	check("before restart")
	h.restart(testConfig())
	check("after restart")
}
