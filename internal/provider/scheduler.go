package provider

import (
	"context"
	"errors"
	"sync"
)

// errQueueFull is returned by acquire when the queue holds its maximum.
var errQueueFull = errors.New("queue full")

// scheduler admits at most slots requests at once and queues at most maxQueue more, serving
// the queue round-robin across consumers so one busy consumer cannot starve the others.
type scheduler struct {
	mu       sync.Mutex
	free     int
	maxQueue int
	queued   int
	ring     []string // consumers with waiting requests, in round-robin order
	next     int      // ring index served next
	waiters  map[string][]*waiter
	onDepth  func(int) // queue depth changes (metrics); may be nil
}

type waiter struct {
	ch      chan struct{}
	granted bool
}

func newScheduler(slots, maxQueue int, onDepth func(int)) *scheduler {
	if onDepth == nil {
		onDepth = func(int) {}
	}
	return &scheduler{free: slots, maxQueue: maxQueue, waiters: map[string][]*waiter{}, onDepth: onDepth}
}

// acquire waits for a slot for consumer key. It returns errQueueFull at once when the queue
// is full, or ctx's error when ctx ends first. The caller must call release exactly once
// after a nil error.
func (s *scheduler) acquire(ctx context.Context, key string) error {
	s.mu.Lock()
	if s.free > 0 && s.queued == 0 {
		s.free--
		s.mu.Unlock()
		return nil
	}
	if s.queued >= s.maxQueue {
		s.mu.Unlock()
		return errQueueFull
	}
	w := &waiter{ch: make(chan struct{})}
	if len(s.waiters[key]) == 0 {
		s.ring = append(s.ring, key)
	}
	s.waiters[key] = append(s.waiters[key], w)
	s.queued++
	s.onDepth(s.queued)
	s.mu.Unlock()

	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	if w.granted {
		// Granted while we gave up: pass the slot on.
		s.mu.Unlock()
		s.release()
		return ctx.Err()
	}
	ws := s.waiters[key]
	for i, x := range ws {
		if x == w {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	s.setWaiters(key, ws)
	s.queued--
	s.onDepth(s.queued)
	s.mu.Unlock()
	return ctx.Err()
}

// setWaiters stores key's queue, dropping key from the ring when it is empty. s.mu is held.
func (s *scheduler) setWaiters(key string, ws []*waiter) {
	if len(ws) > 0 {
		s.waiters[key] = ws
		return
	}
	delete(s.waiters, key)
	for i, k := range s.ring {
		if k == key {
			s.ring = append(s.ring[:i], s.ring[i+1:]...)
			if i < s.next {
				s.next--
			}
			break
		}
	}
	if s.next >= len(s.ring) {
		s.next = 0
	}
}

// release frees a slot, handing it to the next consumer in round-robin order.
func (s *scheduler) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queued == 0 {
		s.free++
		return
	}
	if s.next >= len(s.ring) {
		s.next = 0
	}
	key := s.ring[s.next]
	ws := s.waiters[key]
	w := ws[0]
	s.next++
	s.setWaiters(key, ws[1:])
	s.queued--
	s.onDepth(s.queued)
	w.granted = true
	close(w.ch)
}

// depth returns the number of queued requests.
func (s *scheduler) depth() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queued
}
