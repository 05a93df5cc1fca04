package main

import (
	"math"
	"testing"
	"time"
)

func TestPairedEstimate(t *testing.T) {
	rounds := func(rps ...float64) []result {
		out := make([]result, len(rps))
		for i, r := range rps {
			out[i] = result{Reqs: int(r), Elapsed: time.Second}
		}
		return out
	}
	// Every round's ratio the same: the interval is that point.
	e := pairedEstimate(rounds(1000, 2000, 4000), rounds(950, 1900, 3800))
	if math.Abs(e.Ratio-0.95) > 1e-9 || math.Abs(e.Lo-0.95) > 1e-9 || math.Abs(e.Hi-0.95) > 1e-9 || e.N != 3 {
		t.Fatalf("constant ratio: %+v", e)
	}
	if got := e.atLeast(0.95); got != "holds" {
		t.Errorf("atLeast = %q", got)
	}
	// Ratios 0.9 and 1.1: geometric mean sqrt(0.99); log-sd 0.1419, t(1) 12.706.
	e = pairedEstimate(rounds(1000, 1000), rounds(900, 1100))
	wantLo := math.Exp(math.Log(0.99)/2 - 12.706*math.Log(1.1/0.9)/2) // sd |a-b|/√2, se sd/√2
	if math.Abs(e.Ratio-math.Sqrt(0.99)) > 1e-9 || math.Abs(e.Lo-wantLo) > 1e-6 || math.Abs(e.Lo*e.Hi-0.99) > 1e-9 {
		t.Fatalf("two rounds: %+v, want lo %v", e, wantLo)
	}
	if got := e.atLeast(0.95); got == "holds" || got == "not met" {
		t.Errorf("wide interval decided: %q", got)
	}
	if got := pairedEstimate(rounds(1000, 1000), rounds(800, 810)).atLeast(0.95); got != "not met" {
		t.Errorf("clearly below: %q", got)
	}
	if e := pairedEstimate(nil, nil); e.N != 0 {
		t.Errorf("no rounds: %+v", e)
	}
}

func TestTQuantile(t *testing.T) {
	for _, c := range []struct {
		df   int
		want float64
	}{{1, 12.706}, {10, 2.228}, {30, 2.042}, {60, 2.000}, {119, 1.980}, {1000, 1.96}} {
		if got := tQuantile975(c.df); math.Abs(got-c.want) > 0.001 {
			t.Errorf("t(%d) = %v, want %v", c.df, got, c.want)
		}
	}
}
