// Package chainclient submits transactions to and queries the Mycel ledger
// over CometBFT RPC. Every role other than the node uses it: the CLI, the
// provider, the gateway, the verifier and the benchmarks.
package chainclient

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	cmtbytes "github.com/cometbft/cometbft/libs/bytes"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	ctypes "github.com/cometbft/cometbft/rpc/core/types"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/mycel-network/mycel/internal/address"
	"github.com/mycel-network/mycel/internal/keys"
	"github.com/mycel-network/mycel/internal/ledger"
	"github.com/mycel-network/mycel/internal/tx"
)

// RPC is the part of CometBFT's RPC client this package uses. Both the HTTP
// client (rpc/client/http) and the in-process one (rpc/client/local)
// implement it.
type RPC interface {
	ABCIQuery(ctx context.Context, path string, data cmtbytes.HexBytes) (*ctypes.ResultABCIQuery, error)
	BroadcastTxSync(ctx context.Context, t cmttypes.Tx) (*ctypes.ResultBroadcastTx, error)
	Tx(ctx context.Context, hash []byte, prove bool) (*ctypes.ResultTx, error)
	Status(ctx context.Context) (*ctypes.ResultStatus, error)
}

// DefaultNode is the RPC address of a local devnet.
const DefaultNode = "http://127.0.0.1:26657"

// Client queries the ledger and submits transactions.
type Client struct {
	rpc     RPC
	timeout time.Duration
	poll    time.Duration

	mu      sync.Mutex
	chainID string
	minFee  *uint64
}

// Option configures a Client.
type Option func(*Client)

// WithCommitTimeout bounds how long Submit waits for a transaction to be
// committed (default 30 s).
func WithCommitTimeout(d time.Duration) Option { return func(c *Client) { c.timeout = d } }

// WithChainID sets the chain id instead of asking the node.
func WithChainID(id string) Option { return func(c *Client) { c.chainID = id } }

// WithFee sets the fee of every transaction instead of the ledger's
// min_fee parameter.
func WithFee(fee uint64) Option { return func(c *Client) { c.minFee = &fee } }

// New wraps an RPC client.
func New(rpc RPC, opts ...Option) *Client {
	c := &Client{rpc: rpc, timeout: 30 * time.Second, poll: 25 * time.Millisecond}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Dial returns a Client for a node's RPC address such as
// "http://127.0.0.1:26657" (a "tcp://" scheme or a bare host:port works too).
func Dial(addr string, opts ...Option) (*Client, error) {
	addr = strings.TrimSpace(addr)
	switch {
	case strings.HasPrefix(addr, "tcp://"):
		addr = "http://" + strings.TrimPrefix(addr, "tcp://")
	case !strings.Contains(addr, "://"):
		addr = "http://" + addr
	}
	rpc, err := rpchttp.New(addr, "/websocket")
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return New(rpc, opts...), nil
}

// RPC returns the underlying RPC client.
func (c *Client) RPC() RPC { return c.rpc }

// ChainID returns the chain id, asking the node once.
func (c *Client) ChainID(ctx context.Context) (string, error) {
	c.mu.Lock()
	id := c.chainID
	c.mu.Unlock()
	if id != "" {
		return id, nil
	}
	st, err := c.rpc.Status(ctx)
	if err != nil {
		return "", fmt.Errorf("status: %w", err)
	}
	c.mu.Lock()
	c.chainID = st.NodeInfo.Network
	c.mu.Unlock()
	return st.NodeInfo.Network, nil
}

// QueryError is a failed ledger query.
type QueryError struct {
	Path string
	Code uint32
	Log  string
}

func (e *QueryError) Error() string {
	return fmt.Sprintf("query %s: %s (code %d): %s", e.Path, ledger.CodeName(e.Code), e.Code, e.Log)
}

// ABCICode returns the ledger result code.
func (e *QueryError) ABCICode() uint32 { return e.Code }

// Is makes errors.Is(err, ledger.ErrNotFound) work for "not found" answers.
func (e *QueryError) Is(target error) bool {
	return target == ledger.ErrNotFound && e.Code == ledger.CodeNotFound
}

// Query runs a ledger query ("account/myc1…", "params", …) and decodes its
// JSON answer into out (unless out is nil).
func (c *Client) Query(ctx context.Context, path string, data []byte, out any) error {
	path = "/" + strings.TrimPrefix(path, "/")
	res, err := c.rpc.ABCIQuery(ctx, path, data)
	if err != nil {
		return fmt.Errorf("query %s: %w", path, err)
	}
	if res.Response.Code != 0 {
		return &QueryError{Path: path, Code: res.Response.Code, Log: res.Response.Log}
	}
	if out == nil {
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		*raw = append((*raw)[:0], res.Response.Value...)
		return nil
	}
	if err := json.Unmarshal(res.Response.Value, out); err != nil {
		return fmt.Errorf("query %s: decode answer: %w", path, err)
	}
	return nil
}

// Account is the ledger's view of an account.
type Account = ledger.Account

// Account returns the account at addr. An address the ledger has never seen
// has a zero balance and nonce.
func (c *Client) Account(ctx context.Context, addr string) (Account, error) {
	if err := address.Validate(addr); err != nil {
		return Account{}, fmt.Errorf("account %s: %w", addr, err)
	}
	var a Account
	if err := c.Query(ctx, "account/"+addr, nil, &a); err != nil {
		if errors.Is(err, ledger.ErrNotFound) {
			return Account{Address: addr}, nil
		}
		return Account{}, err
	}
	return a, nil
}

// MinFee returns the fee this client puts on transactions: WithFee's, or
// the ledger's min_fee parameter (asked once).
func (c *Client) MinFee(ctx context.Context) (uint64, error) {
	c.mu.Lock()
	fee := c.minFee
	c.mu.Unlock()
	if fee != nil {
		return *fee, nil
	}
	var p ledger.Params
	if err := c.Query(ctx, "params", nil, &p); err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.minFee = &p.MinFee
	c.mu.Unlock()
	return p.MinFee, nil
}

// TxResult is a committed transaction.
type TxResult struct {
	Hash      string         `json:"hash"` // upper-case hex, as CometBFT prints it
	Height    int64          `json:"height"`
	Code      uint32         `json:"code"`
	Codespace string         `json:"codespace,omitempty"`
	Log       string         `json:"log,omitempty"`
	GasUsed   int64          `json:"gas_used"`
	Events    []ledger.Event `json:"events,omitempty"`
}

// TxError is a transaction the ledger rejected, in CheckTx (Stage "check":
// nothing happened) or in the block (Stage "deliver": only the fee and nonce
// may have been charged, as the ledger's spec says).
type TxError struct {
	Stage     string
	Hash      string
	Height    int64
	Code      uint32
	Codespace string
	Log       string
}

func (e *TxError) Error() string {
	what := "rejected"
	if e.Stage == "deliver" {
		what = fmt.Sprintf("failed in block %d", e.Height)
	}
	return fmt.Sprintf("transaction %s: %s (code %d): %s", what, ledger.CodeName(e.Code), e.Code, e.Log)
}

// ABCICode returns the ledger result code.
func (e *TxError) ABCICode() uint32 { return e.Code }

// Code returns the ledger result code carried by err (a *TxError or
// *QueryError), or 0.
func Code(err error) uint32 {
	var c interface{ ABCICode() uint32 }
	if errors.As(err, &c) {
		return c.ABCICode()
	}
	return 0
}

// Messages turns concrete messages (tx.Send, tx.RegisterModel, …) or tx.Msg
// values into tx.Msg.
func Messages(msgs ...any) ([]tx.Msg, error) {
	if len(msgs) == 0 {
		return nil, errors.New("no messages")
	}
	out := make([]tx.Msg, len(msgs))
	for i, m := range msgs {
		switch v := m.(type) {
		case tx.Msg:
			out[i] = v
		case interface{ Type() string }:
			msg, err := tx.NewMsg(v)
			if err != nil {
				return nil, err
			}
			out[i] = msg
		default:
			return nil, fmt.Errorf("message %d: %T is not a ledger message", i, m)
		}
	}
	return out, nil
}

// Sign builds and signs a transaction from key with the given nonce, the
// client's fee and chain id, and returns its wire bytes.
func (c *Client) Sign(ctx context.Context, key keys.Key, nonce uint64, memo string, msgs ...any) ([]byte, error) {
	ms, err := Messages(msgs...)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	chainID, err := c.ChainID(ctx)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	fee, err := c.MinFee(ctx)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	t, err := tx.Sign(tx.Body{ChainID: chainID, Sender: key.Address, Nonce: nonce, Fee: fee, Msgs: ms, Memo: memo}, key.PrivKey)
	if err != nil {
		return nil, err
	}
	return tx.Encode(t)
}

// Broadcast sends signed transaction bytes and returns once CheckTx accepted
// them (a *TxError with Stage "check" if it did not). It returns the hash.
func (c *Client) Broadcast(ctx context.Context, raw []byte) ([]byte, error) {
	res, err := c.rpc.BroadcastTxSync(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("broadcast: %w", err)
	}
	if res.Code != 0 {
		return nil, &TxError{Stage: "check", Hash: res.Hash.String(), Code: res.Code, Codespace: res.Codespace, Log: res.Log}
	}
	return res.Hash, nil
}

// Wait polls until the transaction with this hash is committed or the commit
// timeout passes. A transaction that failed in its block is returned along
// with a *TxError.
func (c *Client) Wait(ctx context.Context, hash []byte) (TxResult, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	t := time.NewTicker(c.poll)
	defer t.Stop()
	for {
		res, err := c.rpc.Tx(ctx, hash, false)
		if err == nil {
			r := result(res)
			if r.Code != 0 {
				return r, &TxError{Stage: "deliver", Hash: r.Hash, Height: r.Height, Code: r.Code, Codespace: r.Codespace, Log: r.Log}
			}
			return r, nil
		}
		// CometBFT answers "tx (HASH) not found" until the tx is indexed; a
		// node with tx_index "null" can never answer.
		if strings.Contains(err.Error(), "indexing is disabled") {
			return TxResult{}, fmt.Errorf("wait for tx %X: the node does not index transactions (tx_index = \"null\"); use a node with the kv indexer: %w", hash, err)
		}
		if !strings.Contains(err.Error(), "not found") {
			return TxResult{}, fmt.Errorf("wait for tx %X: %w", hash, err)
		}
		select {
		case <-ctx.Done():
			return TxResult{}, fmt.Errorf("wait for tx %X: not committed: %w", hash, ctx.Err())
		case <-t.C:
		}
	}
}

func result(res *ctypes.ResultTx) TxResult {
	r := TxResult{
		Hash:      strings.ToUpper(hex.EncodeToString(res.Hash)),
		Height:    res.Height,
		Code:      res.TxResult.Code,
		Codespace: res.TxResult.Codespace,
		Log:       res.TxResult.Log,
		GasUsed:   res.TxResult.GasUsed,
	}
	for _, e := range res.TxResult.Events {
		ev := ledger.Event{Type: e.Type}
		for _, a := range e.Attributes {
			ev.Attrs = append(ev.Attrs, ledger.Attr{Key: a.Key, Value: a.Value})
		}
		r.Events = append(r.Events, ev)
	}
	return r
}

// Submit signs msgs from key with the account's current nonce, broadcasts
// the transaction and waits until it is committed. Rejections come back as
// *TxError carrying the ledger code. To send many transactions from one key
// without waiting for each, use a Sender.
func (c *Client) Submit(ctx context.Context, key keys.Key, msgs ...any) (TxResult, error) {
	acc, err := c.Account(ctx, key.Address)
	if err != nil {
		return TxResult{}, err
	}
	raw, err := c.Sign(ctx, key, acc.Nonce, "", msgs...)
	if err != nil {
		return TxResult{}, err
	}
	hash, err := c.Broadcast(ctx, raw)
	if err != nil {
		return TxResult{}, err
	}
	return c.Wait(ctx, hash)
}
