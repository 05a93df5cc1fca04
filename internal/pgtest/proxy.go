package pgtest

// Proxy: a TCP relay in front of a PostgreSQL server that a test can stall, as a network
// partition or a server that hangs would: nothing is refused, nothing answers.

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// Proxy relays loopback TCP connections to a target address until the test stalls it. While
// stalled it accepts new connections and never relays a byte on them, and stops relaying on the
// connections it already has (bytes wait, nothing is closed); Resume relays again, the waiting
// bytes first, and sends new connections on. Closed at t.Cleanup.
type Proxy struct {
	l      net.Listener
	target string

	mu      sync.Mutex
	cond    *sync.Cond
	stalled bool
	closed  bool
	conns   []net.Conn
}

// StartProxy starts a Proxy on a free loopback port in front of target (host:port).
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("pgtest: proxy: %v", err)
	}
	p := &Proxy{l: l, target: target}
	p.cond = sync.NewCond(&p.mu)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

// Stall stops relaying, as described on Proxy.
func (p *Proxy) Stall() { p.set(true) }

// Resume relays again.
func (p *Proxy) Resume() { p.set(false) }

func (p *Proxy) set(stalled bool) {
	p.mu.Lock()
	p.stalled = stalled
	p.mu.Unlock()
	p.cond.Broadcast()
}

// wait blocks while the proxy is stalled; false once it is closed.
func (p *Proxy) wait() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.stalled && !p.closed {
		p.cond.Wait()
	}
	return !p.closed
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns = append(p.conns, c)
	return true
}

func (p *Proxy) close() {
	p.l.Close()
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	p.cond.Broadcast()
	for _, c := range conns {
		c.Close()
	}
}

func (p *Proxy) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			return
		}
		go func() {
			if !p.wait() { // a connection made while stalled waits here, unanswered
				return
			}
			u, err := net.DialTimeout("tcp", p.target, 10*time.Second)
			if err != nil {
				c.Close()
				return
			}
			if !p.track(u) {
				c.Close()
				return
			}
			go p.relay(u, c)
			p.relay(c, u)
		}()
	}
}

// relay copies src to dst, holding each chunk while the proxy is stalled.
func (p *Proxy) relay(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.wait() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// WithAddress returns dsn (a postgres:// URL) with its host and port replaced by addr.
func WithAddress(dsn, addr string) (string, error) {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return "", fmt.Errorf("pgtest: WithAddress takes a postgres:// URL")
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("pgtest: the DSN is not a valid URL") // the parse error may quote the password
	}
	u.Host = addr
	return u.String(), nil
}
