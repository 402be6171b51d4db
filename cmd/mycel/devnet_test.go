package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	oai "github.com/openai/openai-go"
	"github.com/openai/openai-go/option"

	"github.com/mycel-network/mycel/internal/chainclient"
	"github.com/mycel-network/mycel/internal/devnet/fleet"
	"github.com/mycel-network/mycel/internal/gateway/apikey"
)

// syncBuffer is a bytes.Buffer safe to write from a child's output copier
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// buildMycel builds the binary into a test temp dir.
func buildMycel(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mycel")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// devnetProcess is `mycel devnet` (or another subcommand) running as a child process.
type devnetProcess struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan error
}

// startProcess runs the mycel binary with args as a child process.
func startProcess(t *testing.T, bin string, args ...string) *devnetProcess {
	t.Helper()
	p := &devnetProcess{cmd: exec.Command(bin, args...), out: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitInfo polls DIR/devnet.json until its gateway is gatewayURL (the
// devnet writes it once every part serves) and returns its fields.
func (p *devnetProcess) waitInfo(t *testing.T, dir, gatewayURL string, limit time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		var in map[string]any
		if b, err := os.ReadFile(filepath.Join(dir, "devnet.json")); err == nil && json.Unmarshal(b, &in) == nil && in["gateway"] == gatewayURL {
			return in
		}
		select {
		case err := <-p.done:
			t.Fatalf("mycel devnet exited before it was ready: %v\n%s", err, p.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("devnet.json names no gateway %s after %s\n%s", gatewayURL, limit, p.out)
		}
		time.Sleep(50 * time.Millisecond) // polling another process's file: nothing to wait on
	}
}

// interrupt sends SIGINT and waits for a clean exit (status 0).
func (p *devnetProcess) interrupt(t *testing.T, limit time.Duration) {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("%s exited with %v after SIGINT\n%s", p.cmd.Args[1], err, p.out)
		}
		t.Logf("stopped %s after SIGINT", time.Since(start).Round(time.Millisecond))
	case <-time.After(limit):
		t.Fatalf("%s still running %s after SIGINT\n%s", p.cmd.Args[1], limit, p.out)
	}
}

func chainHeight(t *testing.T, ctx context.Context, rpc string) (string, int64) {
	t.Helper()
	c, err := chainclient.Dial(rpc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.RPC().Status(ctx)
	if err != nil {
		t.Fatalf("status of %s: %v", rpc, err)
	}
	return st.NodeInfo.Network, st.SyncInfo.LatestBlockHeight
}

// TestDevnetCommand runs `mycel devnet` as a subprocess on a fresh home:
// devnet.json holds the gateway, API key, explorer, RPC, chain id and
// accounts; an OpenAI SDK gets a chat completion with the key; SIGINT stops
// it cleanly; run again on the same home, it resumes the same chain (same
// id, height not lower, same API key). It logs the time to ready.
func TestDevnetCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds mycel and runs the whole network in a subprocess; skipped with -short")
	}
	bin := buildMycel(t)
	home := filepath.Join(t.TempDir(), "devnet")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	addr := freeAddr(t)
	start := time.Now()
	p := startProcess(t, bin, "devnet", "--home", home, "--gateway-addr", addr, "--log-level", "warn")
	in := p.waitInfo(t, home, "http://"+addr, 90*time.Second)
	t.Logf("first start (generates the demo models): ready in %s", time.Since(start).Round(time.Millisecond))
	for _, k := range []string{"gateway", "api_key", "explorer", "rpc", "chain_id"} {
		if s, _ := in[k].(string); s == "" {
			t.Errorf("devnet.json %s = %v, want a value", k, in[k])
		}
	}
	accounts, _ := in["accounts"].(map[string]any)
	for _, name := range []string{"alice", "provider1", "verifier1", "gateway"} {
		if s, _ := accounts[name].(string); s == "" {
			t.Errorf("devnet.json accounts[%s] = %v, want an address (accounts %v)", name, accounts[name], accounts)
		}
	}
	if in["explorer"] != "http://"+addr+"/explorer" {
		t.Errorf("devnet.json explorer = %v, want http://%s/explorer", in["explorer"], addr)
	}
	apiKey := in["api_key"].(string)

	sdk := oai.NewClient(option.WithBaseURL("http://"+addr+"/v1/"), option.WithAPIKey(apiKey), option.WithMaxRetries(0))
	cc, err := sdk.Chat.Completions.New(ctx, oai.ChatCompletionNewParams{Model: fleet.ServedModel,
		Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("Hello")}, MaxTokens: oai.Int(8)})
	if err != nil {
		t.Fatalf("chat completion through the devnet's gateway: %v\n%s", err, p.out)
	}
	if len(cc.Choices) != 1 || cc.Choices[0].Message.Content == "" || cc.Usage.CompletionTokens == 0 {
		t.Errorf("chat completion = %+v, want one choice with text", cc)
	}
	// A wrong key is refused: the devnet's key is what authorises.
	bad := oai.NewClient(option.WithBaseURL("http://"+addr+"/v1/"), option.WithAPIKey(apiKey+"x"), option.WithMaxRetries(0))
	if _, err := bad.Chat.Completions.New(ctx, oai.ChatCompletionNewParams{Model: fleet.ServedModel,
		Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("Hello")}, MaxTokens: oai.Int(8)}); err == nil {
		t.Error("a wrong API key was accepted")
	}

	chainID, h1 := chainHeight(t, ctx, in["rpc"].(string))
	if chainID != in["chain_id"] {
		t.Errorf("the RPC reports chain %q, devnet.json %q", chainID, in["chain_id"])
	}
	p.interrupt(t, 30*time.Second)

	// Again, on the same home and another port: the chain resumes.
	addr2 := freeAddr(t)
	start = time.Now()
	p2 := startProcess(t, bin, "devnet", "--home", home, "--gateway-addr", addr2, "--log-level", "warn")
	in2 := p2.waitInfo(t, home, "http://"+addr2, 60*time.Second)
	ready := time.Since(start)
	t.Logf("resumed start: ready in %s", ready.Round(time.Millisecond))
	chainID2, h2 := chainHeight(t, ctx, in2["rpc"].(string))
	if in2["chain_id"] != in["chain_id"] || chainID2 != chainID {
		t.Errorf("resumed chain id %v (RPC %q), want %v", in2["chain_id"], chainID2, in["chain_id"])
	}
	if h2 < h1 {
		t.Errorf("resumed at height %d, below the %d reached before", h2, h1)
	}
	if in2["api_key"] != apiKey {
		t.Errorf("resumed API key %v, want the first run's %s", in2["api_key"], apiKey)
	}
	sdk2 := oai.NewClient(option.WithBaseURL("http://"+addr2+"/v1/"), option.WithAPIKey(apiKey), option.WithMaxRetries(0))
	if _, err := sdk2.Chat.Completions.New(ctx, oai.ChatCompletionNewParams{Model: fleet.ServedModel,
		Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("Hello again")}, MaxTokens: oai.Int(8)}); err != nil {
		t.Errorf("chat completion after the restart: %v", err)
	}
	p2.interrupt(t, 30*time.Second)
	if !strings.Contains(p2.out.String(), "devnet stopped") {
		t.Errorf("no clean-stop message in the output:\n%s", p2.out)
	}
	// The verifier shops with a key of its own, a new one each start, the old one revoked.
	keys, err := apikey.Open(filepath.Join(home, "gateway", "apikeys.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	all, err := keys.List()
	if err != nil {
		t.Fatal(err)
	}
	live, revoked := 0, 0
	for _, k := range all {
		if k.Name == "verifier1-shopper" {
			if k.Revoked {
				revoked++
			} else {
				live++
			}
		}
	}
	if live != 1 || revoked != 1 {
		t.Errorf("verifier shopper keys after two starts: %d live, %d revoked; want 1 and 1", live, revoked)
	}
}
