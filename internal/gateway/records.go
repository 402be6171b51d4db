package gateway

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/mycel-network/mycel/internal/channel"
	"github.com/mycel-network/mycel/internal/gateway/apikey"
	"github.com/mycel-network/mycel/internal/gateway/gwapi"
	"github.com/mycel-network/mycel/internal/openai"
)

// record is what the gateway keeps of one answered request (gwapi.Record) until it is
// evicted.
type record struct {
	id    string // the gateway's request id
	keyID string // the API key that made the request ("" without authentication)
	model string
	at    time.Time
	size  int64
	tries []recordAttempt
}

// recordAttempt is one provider's part of an answer.
type recordAttempt struct {
	provider string
	endpoint string // the provider's endpoint when it answered, for the reveal
	reqID    string // the request id sent to the provider
	body     []byte // the upstream body, byte for byte (never modified once sent)
	receipt  channel.Receipt
}

// recordOverhead is what a record costs beyond its bodies, roughly (ids, receipt, map entry).
const recordOverhead = 512

// records keeps the records of the latest answered requests in memory, bounded in number,
// age and bytes: the oldest go first.
type records struct {
	limit    int
	ttl      time.Duration
	maxBytes int64

	mu    sync.Mutex
	byID  map[string]*record
	queue []*record // in insertion order; queue[head:] are live
	head  int
	bytes int64
}

func newRecords(limit int, ttl time.Duration, maxBytes int64) *records {
	return &records{limit: limit, ttl: ttl, maxBytes: maxBytes, byID: map[string]*record{}}
}

// put stores r, evicting the oldest records beyond the bounds (r included if it alone is
// larger than maxBytes).
func (s *records) put(r *record) {
	if s.limit <= 0 {
		return
	}
	for _, a := range r.tries {
		r.size += int64(len(a.body))
	}
	r.size += recordOverhead * int64(1+len(r.tries))
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.byID[r.id]; ok { // request ids are random: never, but keep the books right
		s.bytes -= old.size
		old.size = 0
		delete(s.byID, r.id)
	}
	s.byID[r.id] = r
	s.queue = append(s.queue, r)
	s.bytes += r.size
	s.evict(r.at)
}

// evict drops the oldest records while there are more than limit, more than maxBytes of
// them, or they are older than ttl at now. Under s.mu.
func (s *records) evict(now time.Time) {
	for s.head < len(s.queue) {
		r := s.queue[s.head]
		if s.byID[r.id] == r && len(s.byID) <= s.limit && s.bytes <= s.maxBytes && now.Sub(r.at) < s.ttl {
			break
		}
		if s.byID[r.id] == r {
			delete(s.byID, r.id)
			s.bytes -= r.size
		}
		s.queue[s.head] = nil
		s.head++
	}
	if s.head > 64 && s.head*2 >= len(s.queue) { // reclaim the queue's dead front
		s.queue = append(s.queue[:0:0], s.queue[s.head:]...)
		s.head = 0
	}
}

// get returns the record of request id made with keyID, if it is kept.
func (s *records) get(id, keyID string, now time.Time) (*record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evict(now)
	r, ok := s.byID[id]
	if !ok || r.keyID != keyID {
		return nil, false
	}
	return r, true
}

// len returns the number of records kept.
func (s *records) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}

// wire is r as gwapi.Record.
func (r *record) wire() gwapi.Record {
	out := gwapi.Record{RequestID: r.id, Model: r.model, Attempts: make([]gwapi.Attempt, len(r.tries))}
	for i, a := range r.tries {
		out.Attempts[i] = gwapi.Attempt{Provider: a.provider, ProviderRequestID: a.reqID, Body: string(a.body), Receipt: a.receipt}
	}
	return out
}

// keep stores the record of the answer sp to request reqID made with key: the segments that
// delivered part of the answer (a token or a receipt). serve calls it before the answer's
// last byte, so that a client that has read its answer finds the record.
func (g *Gateway) keep(reqID string, key *apikey.Key, sp *splice) {
	if g.records.limit <= 0 {
		return
	}
	r := &record{id: reqID, model: sp.req.model, at: g.now()}
	if key != nil {
		r.keyID = key.ID
	}
	for _, s := range sp.segs {
		if s.tokens == 0 && s.receipt == nil {
			continue
		}
		a := recordAttempt{provider: s.cand.Provider, endpoint: s.cand.endpoint, reqID: s.reqID, body: s.body}
		if s.receipt != nil {
			a.receipt = *s.receipt
		}
		r.tries = append(r.tries, a)
	}
	g.records.put(r)
}

// recordNotFound is the 404 of a record that is not kept or belongs to another key.
func recordNotFound(id string) *openai.Error {
	return &openai.Error{Status: http.StatusNotFound, Type: openai.TypeInvalidRequest, Code: "record_not_found",
		Message: "No record of request '" + id + "' for this API key (records are kept for a limited time and number)"}
}

// lookup returns the record of the request in r's path made with key, or the 404.
func (g *Gateway) lookup(r *http.Request, key *apikey.Key) (*record, *openai.Error) {
	id := r.PathValue("id")
	keyID := ""
	if key != nil {
		keyID = key.ID
	}
	rec, ok := g.records.get(id, keyID, g.now())
	if !ok {
		return nil, recordNotFound(id)
	}
	return rec, nil
}

// handleRecord answers GET gwapi.RecordPath(id).
func (g *Gateway) handleRecord(w http.ResponseWriter, r *http.Request, key *apikey.Key) *openai.Error {
	rec, e := g.lookup(r, key)
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, rec.wire())
	return nil
}

// attemptIndex parses the attempt index of a reveal path against rec.
func attemptIndex(r *http.Request, rec *record) (int, *openai.Error) {
	s := r.PathValue("attempt")
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || i >= len(rec.tries) {
		return 0, &openai.Error{Status: http.StatusNotFound, Type: openai.TypeInvalidRequest, Code: "attempt_not_found",
			Message: "Request '" + rec.id + "' has no attempt '" + s + "' (it has " + strconv.Itoa(len(rec.tries)) + ")"}
	}
	return i, nil
}
