package idp

import (
	"context"
	"errors"

	"golang.org/x/sync/singleflight"
)

var errFlightPanicked = errors.New("idp: shared call panicked")

// flightGroup runs at most one function per key at a time; concurrent callers with the same key
// wait for and share the running call's result. It is golang.org/x/sync/singleflight with one
// difference: a panic in the shared function becomes errFlightPanicked for every caller instead of
// being re-raised in each of them (which would crash request goroutines that only waited).
// The zero value is ready.
type flightGroup struct {
	g singleflight.Group
}

// recovered wraps fn so that a panic becomes errFlightPanicked.
func recovered(fn func() (any, error)) func() (any, error) {
	return func() (v any, err error) {
		defer func() {
			if p := recover(); p != nil {
				v, err = nil, errFlightPanicked
			}
		}()
		return fn()
	}
}

// Do runs fn once for all concurrent callers with the same key and returns its result.
func (g *flightGroup) Do(key string, fn func() (any, error)) (any, error) {
	v, err, _ := g.g.Do(key, recovered(fn))
	return v, err
}

// DoContext is Do, but the caller stops waiting when ctx ends (returning ctx's error); the shared
// call keeps running for the other callers. fn must be bounded by its own context.
func (g *flightGroup) DoContext(ctx context.Context, key string, fn func() (any, error)) (any, error) {
	ch := g.g.DoChan(key, recovered(fn))
	select {
	case r := <-ch:
		return r.Val, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
