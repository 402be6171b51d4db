package explorer

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	ctypes "github.com/cometbft/cometbft/rpc/core/types"

	"github.com/mycel-network/mycel/internal/address"
	"github.com/mycel-network/mycel/internal/tx"
)

// Overview is the header of the page.
type Overview struct {
	ChainID     string          `json:"chain_id"`
	Height      int64           `json:"height"`
	BlockTime   time.Time       `json:"block_time"`
	BlockHash   string          `json:"block_hash"`
	CatchingUp  bool            `json:"catching_up"`
	Moniker     string          `json:"moniker"`
	Gateway     bool            `json:"gateway"` // a Traffic source is attached
	Epoch       json.RawMessage `json:"epoch,omitempty"`
	Supply      json.RawMessage `json:"supply,omitempty"`
	Params      json.RawMessage `json:"params,omitempty"`
	ServerTime  time.Time       `json:"server_time"`
	QueryErrors []string        `json:"query_errors,omitempty"`
}

func (s *server) overview(r *http.Request) (any, error) {
	st, err := s.chain.Status(r.Context())
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	o := Overview{
		ChainID:    st.NodeInfo.Network,
		Height:     st.SyncInfo.LatestBlockHeight,
		BlockTime:  st.SyncInfo.LatestBlockTime,
		BlockHash:  st.SyncInfo.LatestBlockHash.String(),
		CatchingUp: st.SyncInfo.CatchingUp,
		Moniker:    st.NodeInfo.Moniker,
		Gateway:    s.traffic != nil,
		ServerTime: time.Now().UTC(),
	}
	for _, q := range []struct {
		path string
		dst  *json.RawMessage
	}{{"epoch", &o.Epoch}, {"supply", &o.Supply}, {"params", &o.Params}} {
		v, err := s.query(r.Context(), q.path, nil)
		if err != nil {
			o.QueryErrors = append(o.QueryErrors, q.path+": "+err.Error())
			continue
		}
		*q.dst = v
	}
	return o, nil
}

// BlockView is one block in the list.
type BlockView struct {
	Height   int64     `json:"height"`
	Time     time.Time `json:"time"`
	Hash     string    `json:"hash"`
	NumTxs   int       `json:"num_txs"`
	Proposer string    `json:"proposer"`
	AppHash  string    `json:"app_hash"`
}

// blocks returns the latest blocks, newest first (?limit ≤ 20, default 12;
// ?before=H for older ones).
func (s *server) blocks(r *http.Request) (any, error) {
	n := intParam(r, "limit", 12, 20)
	var maxH int64
	if b := r.URL.Query().Get("before"); b != "" {
		h, err := strconv.ParseInt(b, 10, 64)
		if err != nil || h < 2 {
			return nil, badRequest("before: want a height above 1")
		}
		maxH = h - 1
	}
	minH := int64(1)
	if maxH > 0 {
		minH = max(1, maxH-int64(n)+1)
	}
	res, err := s.chain.BlockchainInfo(r.Context(), minH, maxH)
	if err != nil {
		return nil, fmt.Errorf("blocks: %w", err)
	}
	out := []BlockView{}
	for _, m := range res.BlockMetas {
		if len(out) == n {
			break
		}
		out = append(out, BlockView{
			Height:   m.Header.Height,
			Time:     m.Header.Time,
			Hash:     m.BlockID.Hash.String(),
			NumTxs:   m.NumTxs,
			Proposer: m.Header.ProposerAddress.String(),
			AppHash:  m.Header.AppHash.String(),
		})
	}
	return out, nil
}

// TxView is a committed transaction decoded with internal/tx.
type TxView struct {
	Hash   string   `json:"hash"`
	Height int64    `json:"height"`
	Index  uint32   `json:"index"`
	Code   uint32   `json:"code"`
	Log    string   `json:"log,omitempty"`
	Sender string   `json:"sender"`
	Nonce  uint64   `json:"nonce"`
	Fee    uint64   `json:"fee"`
	Memo   string   `json:"memo,omitempty"`
	Types  []string `json:"types"`
	// Detail only (GET tx/{hash}):
	Msgs   []tx.Msg  `json:"msgs,omitempty"`
	Events []EventKV `json:"events,omitempty"`
	// Undecodable is set when the bytes are not a Mycel transaction.
	Undecodable string `json:"undecodable,omitempty"`
}

// EventKV is one ABCI event of a transaction.
type EventKV struct {
	Type  string            `json:"type"`
	Attrs map[string]string `json:"attrs"`
}

func txView(res *ctypes.ResultTx, detail bool) TxView {
	v := TxView{
		Hash:   strings.ToUpper(hex.EncodeToString(res.Hash)),
		Height: res.Height,
		Index:  res.Index,
		Code:   res.TxResult.Code,
		Log:    res.TxResult.Log,
		Types:  []string{},
	}
	t, err := tx.Decode(res.Tx)
	if err != nil {
		v.Undecodable = err.Error()
		return v
	}
	v.Sender, v.Nonce, v.Fee, v.Memo = t.Body.Sender, t.Body.Nonce, t.Body.Fee, t.Body.Memo
	for _, m := range t.Body.Msgs {
		v.Types = append(v.Types, m.Type)
	}
	if detail {
		v.Msgs = t.Body.Msgs
		for _, e := range res.TxResult.Events {
			ev := EventKV{Type: e.Type, Attrs: map[string]string{}}
			for _, a := range e.Attributes {
				ev.Attrs[a.Key] = a.Value
			}
			v.Events = append(v.Events, ev)
		}
	}
	return v
}

func (s *server) searchTxs(r *http.Request, query string, n int) ([]TxView, error) {
	page, per := 1, n
	res, err := s.chain.TxSearch(r.Context(), query, false, &page, &per, "desc")
	if err != nil {
		return nil, fmt.Errorf("tx search: %w", err)
	}
	out := make([]TxView, 0, len(res.Txs))
	for _, t := range res.Txs {
		out = append(out, txView(t, false))
	}
	return out, nil
}

// txs returns the latest transactions, newest first (?limit ≤ 50, default 15).
func (s *server) txs(r *http.Request) (any, error) {
	return s.searchTxs(r, "tx.height > 0", intParam(r, "limit", 15, 50))
}

func parseHash(q string) ([]byte, bool) {
	q = strings.TrimPrefix(strings.TrimPrefix(q, "0x"), "0X")
	if len(q) != 64 {
		return nil, false
	}
	b, err := hex.DecodeString(q)
	return b, err == nil
}

func (s *server) tx(r *http.Request) (any, error) {
	h, ok := parseHash(r.PathValue("hash"))
	if !ok {
		return nil, badRequest("tx hash: want 64 hex digits")
	}
	res, err := s.chain.Tx(r.Context(), h, false)
	if err != nil {
		if strings.Contains(err.Error(), "not found") {
			return nil, notFound("transaction not found")
		}
		return nil, fmt.Errorf("tx: %w", err)
	}
	return txView(res, true), nil
}

// SearchResult is what the search box finds. Kind is "address", "tx",
// "channel" or "block"; the other fields are set as they apply.
type SearchResult struct {
	Kind     string          `json:"kind"`
	Query    string          `json:"query"`
	Account  json.RawMessage `json:"account,omitempty"`
	Provider json.RawMessage `json:"provider,omitempty"`
	Verifier json.RawMessage `json:"verifier,omitempty"`
	Channels json.RawMessage `json:"channels,omitempty"`
	Channel  json.RawMessage `json:"channel,omitempty"`
	Txs      []TxView        `json:"txs,omitempty"`
	Tx       *TxView         `json:"tx,omitempty"`
	Block    *BlockView      `json:"block,omitempty"`
}

// search looks q up as an address, a transaction hash, or a number: a
// channel id (and the block of that height).
func (s *server) search(r *http.Request) (any, error) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if q == "" {
		return nil, badRequest("q: empty search")
	}
	if len(q) > 200 {
		return nil, badRequest("q: too long")
	}
	ctx := r.Context()
	switch {
	case address.Validate(q) == nil:
		res := SearchResult{Kind: "address", Query: q}
		var err error
		if res.Account, err = s.query(ctx, "account/"+q, nil); err != nil {
			return nil, err
		}
		res.Provider, _ = s.query(ctx, "provider/"+q, nil)
		res.Verifier, _ = s.query(ctx, "verifier/"+q, nil)
		if res.Channels, err = s.query(ctx, "channels", []byte(q)); err != nil {
			return nil, err
		}
		sent, err := s.searchTxs(r, fmt.Sprintf("tx.sender = '%s'", q), 25)
		if err != nil {
			return nil, err
		}
		recv, err := s.searchTxs(r, fmt.Sprintf("transfer.recipient = '%s'", q), 25)
		if err != nil {
			return nil, err
		}
		res.Txs = mergeTxs(sent, recv)
		return res, nil
	case isHex(q):
		h, ok := parseHash(q)
		if !ok {
			return nil, badRequest("a transaction hash has 64 hex digits")
		}
		t, err := s.chain.Tx(ctx, h, false)
		if err != nil {
			if strings.Contains(err.Error(), "not found") {
				return nil, notFound("no transaction " + strings.ToUpper(q))
			}
			return nil, fmt.Errorf("tx: %w", err)
		}
		v := txView(t, true)
		return SearchResult{Kind: "tx", Query: q, Tx: &v}, nil
	case isDigits(q):
		id, err := strconv.ParseUint(q, 10, 63)
		if err != nil {
			return nil, badRequest("number too large")
		}
		res := SearchResult{Kind: "channel", Query: q}
		ch, cerr := s.query(ctx, "channel/"+q, nil)
		if cerr == nil {
			res.Channel = ch
		}
		if bi, err := s.chain.BlockchainInfo(ctx, int64(id), int64(id)); err == nil && len(bi.BlockMetas) == 1 {
			m := bi.BlockMetas[0]
			res.Block = &BlockView{Height: m.Header.Height, Time: m.Header.Time, Hash: m.BlockID.Hash.String(),
				NumTxs: m.NumTxs, Proposer: m.Header.ProposerAddress.String(), AppHash: m.Header.AppHash.String()}
			if res.Channel == nil {
				res.Kind = "block"
			}
		}
		if res.Channel == nil && res.Block == nil {
			return nil, notFound("no channel or block " + q)
		}
		return res, nil
	}
	return nil, badRequest("search for an address (myc1…), a transaction hash or a channel id")
}

func mergeTxs(a, b []TxView) []TxView {
	seen := map[string]bool{}
	out := make([]TxView, 0, len(a)+len(b))
	for _, l := range [][]TxView{a, b} {
		for _, t := range l {
			if !seen[t.Hash] {
				seen[t.Hash] = true
				out = append(out, t)
			}
		}
	}
	// Newest first: height, then index, descending.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && less(out[j-1], out[j]); j-- {
			out[j-1], out[j] = out[j], out[j-1]
		}
	}
	return out
}

func less(a, b TxView) bool {
	if a.Height != b.Height {
		return a.Height < b.Height
	}
	return a.Index < b.Index
}

func isHex(s string) bool {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if s == "" {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
			return false
		}
	}
	return !isDigits(s)
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
