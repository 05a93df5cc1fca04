package mcpstdio

import (
	"context"
	"errors"
	"sync"
	"time"
)

// This file keeps the processes: at most one current process per user key, started on the
// user's first request and shared by that user's concurrent requests; a process whose
// environment hash differs from the request's (a new token) is retired and replaced; limits on
// processes in all and per user (a retired process still draining its calls counts); idle
// processes end after idle_timeout.

// errFull: a process limit is reached and no process can be ended to make room.
var errFull = errors.New("the limit of MCP server processes is reached")

// errClosed: the handler is being cleaned up (Caddy reload or stop).
var errClosed = errors.New("the mcp_stdio handler is shutting down")

type pool struct {
	cfg        *procConfig
	maxTotal   int
	maxPerUser int
	idle       time.Duration
	drain      time.Duration
	ctx        context.Context // the Caddy context: ends with the handler's config

	onNotify func(p *proc, msg []byte) bool

	mu      sync.Mutex
	current map[string]*proc   // user key -> the process new requests use
	all     map[*proc]struct{} // every process not yet exited, retired ones included
	perUser map[string]int
	closed  bool
	wg      sync.WaitGroup // goroutines ending processes
}

func newPool(ctx context.Context, cfg *procConfig, maxTotal, maxPerUser int, idle, drain time.Duration) *pool {
	return &pool{cfg: cfg, maxTotal: maxTotal, maxPerUser: maxPerUser, idle: idle, drain: drain, ctx: ctx,
		current: map[string]*proc{}, all: map[*proc]struct{}{}, perUser: map[string]int{}}
}

// acquire returns the user's running, initialized process for spec, starting one if needed,
// with one more call counted on it; the caller must release it. Waits (bounded by ctx and
// start_timeout) while the process starts or while an evicted process exits.
func (pl *pool) acquire(ctx context.Context, spec procSpec) (*proc, error) {
	for {
		p, wait, err := pl.pick(spec)
		if err != nil {
			return nil, err
		}
		if wait != nil {
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		select {
		case <-p.ready:
		case <-ctx.Done():
			pl.release(p)
			return nil, ctx.Err()
		}
		if p.startErr != nil {
			pl.release(p)
			return nil, p.startErr
		}
		return p, nil
	}
}

// pick does acquire's bookkeeping under the lock. It returns the process to use (maybe still
// starting), or a channel to wait on before trying again (an evicted process exiting).
func (pl *pool) pick(spec procSpec) (*proc, <-chan struct{}, error) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.closed {
		return nil, nil, errClosed
	}
	if p := pl.current[spec.key]; p != nil {
		if p.hash == spec.hash && !p.isDead() {
			p.inflight++
			p.lastUsed = pl.cfg.now()
			return p, nil, nil
		}
		pl.retireLocked(p)
	}
	if pl.perUser[spec.key] >= pl.maxPerUser {
		return nil, nil, errFull
	}
	if len(pl.all) >= pl.maxTotal {
		victim := pl.idlestLocked()
		if victim == nil {
			return nil, nil, errFull
		}
		pl.retireLocked(victim)
		return nil, victim.exited, nil
	}
	p := newProc(pl.cfg, spec)
	p.onNotify = pl.onNotify
	p.onExit = pl.exited
	p.inflight = 1
	p.lastUsed = pl.cfg.now()
	pl.current[spec.key] = p
	pl.all[p] = struct{}{}
	pl.perUser[spec.key]++
	go p.start(pl.ctx, spec)
	return p, nil, nil
}

// idlestLocked returns the least recently used process with no call in flight, or nil.
func (pl *pool) idlestLocked() *proc {
	var v *proc
	for p := range pl.all {
		if p.inflight == 0 && !p.retired && (v == nil || p.lastUsed.Before(v.lastUsed)) {
			v = p
		}
	}
	return v
}

// retireLocked takes p out of use. It ends now if idle, else when its last call is released,
// and at the latest after the drain time.
func (pl *pool) retireLocked(p *proc) {
	if pl.current[p.key] == p {
		delete(pl.current, p.key)
	}
	if p.retired {
		return
	}
	p.retired = true
	if pl.closed {
		return // close ends every process itself
	}
	if p.inflight == 0 {
		pl.endAsync(p)
		return
	}
	pl.wg.Add(1)
	go func() {
		defer pl.wg.Done()
		t := time.NewTimer(pl.drain)
		defer t.Stop()
		select {
		case <-p.exited:
		case <-t.C:
			p.end()
		}
	}()
}

// endAsync ends p in the background; pl.mu must be held.
func (pl *pool) endAsync(p *proc) {
	if pl.closed {
		return // close ends every process itself
	}
	pl.wg.Add(1)
	go func() {
		defer pl.wg.Done()
		p.end()
	}()
}

// release ends one call on p.
func (pl *pool) release(p *proc) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	p.inflight--
	p.lastUsed = pl.cfg.now()
	if p.retired && p.inflight == 0 {
		pl.endAsync(p)
	}
}

// exited is every process's onExit: it frees the process's place.
func (pl *pool) exited(p *proc) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if _, ok := pl.all[p]; !ok {
		return
	}
	delete(pl.all, p)
	if pl.current[p.key] == p {
		delete(pl.current, p.key)
	}
	if pl.perUser[p.key]--; pl.perUser[p.key] <= 0 {
		delete(pl.perUser, p.key)
	}
}

// lookup returns the user's current process without starting one (nil if none).
func (pl *pool) lookup(key string) *proc {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.current[key]
}

// procsOf returns every process of key that has not exited, retired ones included.
func (pl *pool) procsOf(key string) []*proc {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	var ps []*proc
	for p := range pl.all {
		if p.key == key {
			ps = append(ps, p)
		}
	}
	return ps
}

// reap retires every process idle for idle_timeout at now.
func (pl *pool) reap(now time.Time) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for p := range pl.all {
		if p.inflight == 0 && !p.retired && now.Sub(p.lastUsed) >= pl.idle {
			pl.retireLocked(p)
		}
	}
}

// count returns the processes not yet exited, and those of key.
func (pl *pool) count(key string) (total, user int) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return len(pl.all), pl.perUser[key]
}

// close refuses new processes and ends all of them gracefully; it returns once every one has
// exited.
func (pl *pool) close() {
	pl.mu.Lock()
	pl.closed = true
	var ps []*proc
	for p := range pl.all {
		ps = append(ps, p)
		delete(pl.current, p.key)
		p.retired = true
	}
	pl.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.end()
		}()
	}
	wg.Wait()
	pl.wg.Wait()
}
