package provider

import (
	"testing"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/google/go-cmp/cmp"

	"github.com/mycel-network/mycel/internal/channel"
)

// TestStoreCrash simulates kill -9: a strict in-memory file system drops everything not
// synced. Receipts and the channel records committed with them survive; a voucher saved
// without sync since the last commit may not (it was never acknowledged to anyone).
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
