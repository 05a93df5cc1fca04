package idp

import (
	"context"
	"errors"
	"sync"
)

var errFlightPanicked = errors.New("idp: shared call panicked")

// flightGroup runs at most one function per key at a time; concurrent callers with the same key
// wait for and share the running call's result (a small singleflight, to avoid a dependency).
type flightGroup struct {
	mu    sync.Mutex
	calls map[string]*flightCall
}

type flightCall struct {
	done chan struct{}
	val  any
	err  error
}

func (g *flightGroup) Do(key string, fn func() (any, error)) (any, error) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = make(map[string]*flightCall)
	}
	if c, ok := g.calls[key]; ok {
		g.mu.Unlock()
		<-c.done
		return c.val, c.err
	}
	c := &flightCall{done: make(chan struct{}), err: errFlightPanicked}
	g.calls[key] = c
	g.mu.Unlock()

	defer func() {
		g.mu.Lock()
		delete(g.calls, key)
		g.mu.Unlock()
		close(c.done)
	}()
	c.val, c.err = fn()
	return c.val, c.err
}

// DoContext is Do, but the caller stops waiting when ctx ends (returning ctx's error); the shared
// call keeps running for the other callers. fn must be bounded by its own context.
func (g *flightGroup) DoContext(ctx context.Context, key string, fn func() (any, error)) (any, error) {
	type result struct {
		v   any
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := g.Do(key, fn)
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
