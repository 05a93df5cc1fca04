package idp

import (
	"context"
	"errors"
	"sync"
	"testing"
)

// A panicking shared call becomes errFlightPanicked for the caller and for a waiter (nobody
// crashes), and leaves the key usable again. Sharing itself is what TestTokenExchangeGitHubRefreshSingleFlight
// checks through githubTokenFor (many exchanges, one GitHub refresh).
func TestFlightGroupPanicBecomesError(t *testing.T) {
	var g flightGroup
	started := make(chan struct{})
	release := make(chan struct{})
	waiterJoined := make(chan struct{})
	var wg sync.WaitGroup
	var firstErr, waiterErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, firstErr = g.Do("k", func() (any, error) {
			close(started)
			<-release
			panic("boom")
		})
	}()
	<-started
	go func() {
		defer wg.Done()
		close(waiterJoined)
		_, waiterErr = g.DoContext(context.Background(), "k", func() (any, error) {
			panic("boom too")
		})
	}()
	<-waiterJoined
	close(release)
	wg.Wait()
	if !errors.Is(firstErr, errFlightPanicked) {
		t.Errorf("caller: err = %v, want errFlightPanicked", firstErr)
	}
	if !errors.Is(waiterErr, errFlightPanicked) {
		t.Errorf("waiter: err = %v, want errFlightPanicked", waiterErr)
	}
	v, err := g.Do("k", func() (any, error) { return 7, nil })
	if err != nil || v != 7 {
		t.Errorf("after a panic: %v, %v; want 7, nil", v, err)
	}
}

func TestFlightGroupContextStopsWaiting(t *testing.T) {
	var g flightGroup
	started := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := g.Do("k", func() (any, error) {
			close(started)
			<-release
			return "v", nil
		})
		done <- err
	}()
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.DoContext(ctx, "k", func() (any, error) { return nil, nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("DoContext with a cancelled context: %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Errorf("the shared call failed for its first caller: %v", err)
	}
}
