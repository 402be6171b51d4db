package provider

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/google/go-cmp/cmp"

	"github.com/mycel-network/mycel/internal/channel"
)

// TestStoreCrash simulates a power loss: a strict in-memory file system drops everything not
// synced. Receipts and the channel records committed with them survive; a voucher saved
// without sync since the last commit may not (it was never acknowledged to anyone; kill -9,
// which keeps what reached the kernel, is TestVoucherSurvivesKill).
func TestStoreCrash(t *testing.T) {
	fs := vfs.NewStrictMem()
	// The data directory's own entry must be durable, as on a real disk after mkdir+fsync.
	if err := fs.MkdirAll("data", 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := fs.OpenDir("")
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Sync(); err != nil {
		t.Fatal(err)
	}
	root.Close()
	s, err := OpenStore("data", StoreOptions{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	fs.SetIgnoreSyncs(false)
	alice, _ := testKey("alice")
	var recs []ChannelRecord
	for i := uint64(1); i <= 3; i++ {
		rec := ChannelRecord{ID: 7, Delivered: 10 * i, Latest: channel.SignVoucher(testChain, 7, 10*(i-1), alice), Receipts: i}
		rc := channel.Receipt{ChainID: testChain, RequestID: "r" + itoa(int(i)), ChannelID: 7, Cost: 10, Cumulative: 10 * i}
		if err := s.Commit(rec, rc); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	unsynced := recs[2]
	unsynced.Latest = channel.SignVoucher(testChain, 7, 30, alice)
	if err := s.SaveChannel(unsynced); err != nil {
		t.Fatal(err)
	}
	// Crash: keep only what was synced, then reopen.
	fs.SetIgnoreSyncs(true)
	_ = s.Close() // nothing it writes now is synced: ResetToSyncedState drops it
	fs.ResetToSyncedState()
	fs.SetIgnoreSyncs(false)
	s2, err := OpenStore("data", StoreOptions{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, ok, err := s2.Channel(7)
	if err != nil || !ok {
		t.Fatalf("channel after crash: %v %v", ok, err)
	}
	if diff := cmp.Diff(recs[2], got); diff != "" {
		t.Errorf("channel after crash (-want +got):\n%s", diff)
	}
	for i := 1; i <= 3; i++ {
		rc, ok, err := s2.Receipt(7, "r"+itoa(i))
		if err != nil || !ok || rc.Cumulative != uint64(10*i) {
			t.Errorf("receipt r%d after crash: %+v %v %v", i, rc, ok, err)
		}
	}
	all, err := s2.Channels()
	if err != nil || len(all) != 1 {
		t.Errorf("Channels = %v, %v", all, err)
	}
}

// crashChildEnv names the provider home of TestVoucherSurvivesKill's child process.
const crashChildEnv = "MYCEL_PROVIDER_CRASH_CHILD"

// TestVoucherSurvivesKill: a voucher that arrives with a request ending without a receipt (here
// a backend failure) is still redeemable after the provider process is killed with SIGKILL and
// its store reopened. A child process (this test binary) serves the requests on a real disk and
// signals when the failed request has been answered; the parent kills it and restarts.
func TestVoucherSurvivesKill(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(t, dir)
		return
	}
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestVoucherSurvivesKill$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var paid uint64
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if n, ok := strings.CutPrefix(sc.Text(), "PAID "); ok {
			paid, _ = strconv.ParseUint(n, 10, 64)
			break
		}
	}
	if paid == 0 {
		t.Fatalf("child did not report its voucher: %v", sc.Err())
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no deferred code, no Close
		t.Fatal(err)
	}
	_ = cmd.Wait()

	h := newHarnessAt(t, dir, StoreOptions{}, nil)
	h.openChannel(1, 1_000_000)
	ctx := context.Background()
	if ci := h.channelInfo(1); ci.VoucherAmount != paid || ci.Delivered != paid {
		t.Errorf("after kill: %+v, want voucher %d covering delivered %d", ci, paid, paid)
	}
	h.p.redeemAll(ctx, 1, "test")
	if ch, _ := h.chain.Channel(ctx, 1); ch.Redeemed != paid {
		t.Errorf("redeemed %d after the kill, want the voucher's %d", ch.Redeemed, paid)
	}
}

// crashChild is the provider TestVoucherSurvivesKill kills: one paid request, then a request
// paying for it that fails in the backend (no receipt), then it reports and waits.
func crashChild(t *testing.T, dir string) {
	h := newHarnessAt(t, dir, StoreOptions{}, nil)
	h.openChannel(1, 1_000_000)
	code, _, rc, e, _ := h.chat(call{body: chatBody(3, ""), voucher: h.voucher(1, 0)})
	if code != 200 {
		t.Fatal(code, e)
	}
	h.syn.Err = errors.New("engine crashed")
	if code, _, _, e, _ := h.chat(call{body: chatBody(3, ""), voucher: h.voucher(1, rc.Cumulative)}); code != http.StatusBadGateway {
		t.Fatalf("failing request: %d %v, want 502", code, e)
	}
	fmt.Printf("PAID %d\n", rc.Cumulative)
	select {} // killed by the parent
}

// TestJournalCompaction: compaction writes the journaled vouchers into pebble and empties the
// journal; a restart finds them.
func TestJournalCompaction(t *testing.T) {
	h := newHarness(t, nil)
	h.openChannel(1, 1_000_000)
	h.openChannel(2, 1_000_000)
	for id := uint64(1); id <= 2; id++ {
		code, _, rc, e, _ := h.chat(call{body: chatBody(3, ""), voucher: h.voucher(id, 0)})
		if code != 200 {
			t.Fatal(code, e)
		}
		h.syn.Err = errors.New("engine crashed") // the paying request gets no receipt
		if code, _, _, _, _ := h.chat(call{body: chatBody(3, ""), voucher: h.voucher(id, rc.Cumulative+id)}); code != http.StatusBadGateway {
			t.Fatalf("failing request: %d", code)
		}
		h.syn.Err = nil
	}
	if h.store.JournalLen() == 0 {
		t.Fatal("nothing journaled")
	}
	if err := h.p.pay.compact(); err != nil {
		t.Fatal(err)
	}
	if n := h.store.JournalLen(); n != 0 {
		t.Errorf("journal holds %d bytes after compaction", n)
	}
	for id := uint64(1); id <= 2; id++ {
		rec, _, err := h.store.Channel(id)
		if err != nil || rec.Latest.Amount != 8+id {
			t.Errorf("channel %d in pebble: latest %d (%v), want %d", id, rec.Latest.Amount, err, 8+id)
		}
	}
	h.restart(testConfig())
	for id := uint64(1); id <= 2; id++ {
		if ci := h.channelInfo(id); ci.VoucherAmount != 8+id {
			t.Errorf("after restart channel %d: voucher %d, want %d", id, ci.VoucherAmount, 8+id)
		}
	}
}
