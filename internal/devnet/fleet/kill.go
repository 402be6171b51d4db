package fleet

import (
	"context"
	"fmt"
	"net"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/mycel-network/mycel/internal/provider/backend"
	"github.com/mycel-network/mycel/internal/verifier/cheat"
)

// killableListener lets the devnet simulate a provider's crash: Kill
// closes the listener and every connection it accepted, so requests in
// flight break mid-answer and new ones are refused, as when the process
// dies.
type killableListener struct {
	net.Listener

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	killed bool
}

func newKillable(addr string) (*killableListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &killableListener{Listener: ln, conns: map[net.Conn]struct{}{}}, nil
}

func (l *killableListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.killed {
		c.Close()
		return nil, net.ErrClosed
	}
	l.conns[c] = struct{}{}
	return &trackedConn{Conn: c, l: l}, nil
}

func (l *killableListener) kill() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.killed = true
	l.Listener.Close()
	for c := range l.conns {
		c.Close()
	}
}

func (l *killableListener) isKilled() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.killed
}

type trackedConn struct {
	net.Conn
	l *killableListener
}

func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c.Conn)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// KillProvider simulates the crash of the provider with this address or
// name: its connections drop mid-answer and it answers nothing more.
func (f *Fleet) KillProvider(who string) error {
	for _, p := range f.providers {
		if p.Address == who || p.Name == who {
			p.ln.kill()
			return nil
		}
	}
	return fmt.Errorf("fleet: no provider %s", who)
}

// cheating is a cheat.Backend that also runs the engines it wraps: the
// provider runs the backends that have a Run method, and cheat.Backend has
// none.
type cheating struct {
	*cheat.Backend
}

// Run runs the honest and the cheap engines until ctx ends.
func (c cheating) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, b := range []backend.Backend{c.Honest, c.Cheap} {
		if r, ok := b.(interface{ Run(context.Context) error }); ok {
			g.Go(func() error { return r.Run(ctx) })
		}
	}
	return g.Wait()
}
