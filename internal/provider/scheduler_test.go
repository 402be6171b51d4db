package provider

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestSchedulerFair: with one slot busy, requests queued by a heavy consumer and a light one
// are served alternately, not in arrival order.
func TestSchedulerFair(t *testing.T) {
	s := newScheduler(1, 10, nil)
	ctx := context.Background()
	if err := s.acquire(ctx, "holder"); err != nil {
		t.Fatal(err)
	}
	order := make(chan string, 10)
	arrivals := []string{"heavy", "heavy", "heavy", "heavy", "light", "light"}
	for i, who := range arrivals {
		go func() {
			if err := s.acquire(ctx, who); err != nil {
				t.Error(err)
				return
			}
			order <- who
		}()
		waitFor(t, func() bool { return s.depth() == i+1 }) // fix the arrival order
	}
	var got []string
	s.release() // holder done
	for range arrivals {
		who := <-order
		got = append(got, who)
		s.release()
	}
	want := []string{"heavy", "light", "heavy", "light", "heavy", "heavy"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("service order (-want +got):\n%s", diff)
	}
}

func TestSchedulerQueueFullAndCancel(t *testing.T) {
	s := newScheduler(1, 1, nil)
	ctx := context.Background()
	if err := s.acquire(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- s.acquire(cctx, "b") }()
	waitFor(t, func() bool { return s.depth() == 1 })
	if err := s.acquire(ctx, "c"); !errors.Is(err, errQueueFull) {
		t.Errorf("acquire with a full queue = %v, want errQueueFull", err)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled waiter = %v", err)
	}
	if d := s.depth(); d != 0 {
		t.Errorf("depth %d after cancel", d)
	}
	s.release()
	// The slot is free again: acquire does not block.
	if err := s.acquire(ctx, "d"); err != nil {
		t.Fatal(err)
	}
}
