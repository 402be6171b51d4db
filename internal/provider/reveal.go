package provider

import (
	"net/http"

	"github.com/mycel-network/mycel/internal/openai"
	"github.com/mycel-network/mycel/internal/provider/reveal"
)

// serveReveal answers GET /mycel/v1/logprobs/{request}: the token ids and logprobs behind
// the logprobs commitment of the request's receipt, to the consumer of its channel only,
// signed by the provider's key (docs/spec/channels.md, "Logprobs reveal").
func (p *Provider) serveReveal(w http.ResponseWriter, r *http.Request) {
	reqID := r.PathValue("request")
	if !validRequestID(reqID) {
		openai.WriteError(w, &openai.Error{Status: 400, Type: openai.TypeInvalidRequest, Message: "malformed request id"})
		return
	}
	sig := r.Header.Get(reveal.Header)
	if sig == "" {
		openai.WriteError(w, &openai.Error{Status: 401, Type: openai.TypeAuthentication, Message: "missing " + reveal.Header + " header: the consumer's signature over the reveal request"})
		return
	}
	all, err := p.deps.Store.Committed(reqID)
	if err != nil {
		p.log.Error("read committed logprobs", "request_id", reqID, "err", err)
		openai.WriteError(w, &openai.Error{Status: 500, Type: openai.TypeServer, Message: "provider could not read its store"})
		return
	}
	if len(all) == 0 {
		openai.WriteError(w, &openai.Error{Status: 404, Type: openai.TypeNotFound, Message: "no receipt for request " + reqID})
		return
	}
	for _, c := range all {
		rc, ok, err := p.deps.Store.Receipt(c.ChannelID, reqID)
		if err != nil || !ok {
			p.log.Error("committed logprobs without a receipt", "request_id", reqID, "channel_id", c.ChannelID, "err", err)
			continue
		}
		pub, err := p.deps.Chain.PubKey(r.Context(), rc.Consumer)
		if err != nil || pub == nil {
			openai.WriteError(w, &openai.Error{Status: 503, Type: openai.TypeUnavailable, Message: "cannot read the public key of consumer " + rc.Consumer + " from the ledger"})
			return
		}
		if reveal.Verify(p.chainID, p.deps.Address, reqID, sig, pub) != nil {
			continue // not this channel's consumer
		}
		out := reveal.Response{RequestID: reqID, IDs: c.IDs, Logprobs: make([]reveal.Logprob, len(c.Logprobs))}
		for i, v := range c.Logprobs {
			out.Logprobs[i] = reveal.Logprob(v)
		}
		if out.IDs == nil {
			out.IDs = []int32{}
		}
		writeJSON(w, http.StatusOK, out.Sign(p.chainID, p.deps.Address, p.deps.PrivKey))
		return
	}
	openai.WriteError(w, &openai.Error{Status: 403, Type: openai.TypePermission, Message: "the signature is not the paying consumer's over this chain, provider and request"})
}
