// Package gwapi defines the parts of the gateway's HTTP API beyond OpenAI's that clients
// such as verifiers use: pinning a request to one provider, reading back what the gateway
// sent upstream with the provider's signed receipt, and the provider's logprobs reveal
// fetched on the caller's behalf. It holds only names and wire types, so clients need not
// import the gateway.
package gwapi

import (
	"strconv"

	"github.com/mycel-network/mycel/internal/channel"
)

// HeaderPinProvider, on a generation request, restricts it to the provider with this
// address: no other provider is tried, no hedge is sent, a mid-stream failure is not failed
// over. A provider that is unknown, not routable for the model or beyond the request's
// limits gives 503 with code "no_provider".
const HeaderPinProvider = "X-Mycel-Pin-Provider"

// RecordPath returns the path of the record of a request the caller made, by the gateway's
// request id (the X-Request-Id response header). GET, authorised by the same API key that
// made the request (another key gets 404). The gateway keeps records in memory for a bounded
// time, number and size (gateway config record_ttl, record_limit, record_max_bytes); an
// expired or unknown id gets 404. A request's record is kept before the last byte of its
// answer is sent, so a client that has read the answer finds it.
func RecordPath(requestID string) string { return "/mycel/v1/requests/" + requestID }

// RevealPath returns the path at which the gateway fetches, as the paying consumer, the
// provider's logprobs reveal (provider/reveal) of attempt i of a request's record, and
// answers with the provider's status and body unchanged (a provider it cannot reach: 502).
func RevealPath(requestID string, attempt int) string {
	return RecordPath(requestID) + "/attempts/" + strconv.Itoa(attempt) + "/logprobs"
}

// Record is what the gateway sent upstream for one request and what it got back.
type Record struct {
	RequestID string    `json:"request_id"` // the gateway's, as in X-Request-Id
	Model     string    `json:"model"`
	Attempts  []Attempt `json:"attempts"` // the attempts that delivered part of the answer, in answer order
}

// Attempt is one provider's part of an answer: the exact body the gateway sent it and the
// receipt it signed, which binds that body by its request hash. The receipt is the one the
// provider returned, kept before the gateway verifies it (right after the answer): a client
// checks it against the provider's key on the ledger itself. A provider whose stream broke
// before its receipt leaves the zero Receipt.
type Attempt struct {
	Provider          string          `json:"provider"`
	ProviderRequestID string          `json:"provider_request_id"`
	Body              string          `json:"body"` // the upstream request body, byte for byte
	Receipt           channel.Receipt `json:"receipt"`
}
