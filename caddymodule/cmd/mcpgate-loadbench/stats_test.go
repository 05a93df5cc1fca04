package main

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// rounds makes one result per value, each 1 s long, so RPS is the value.
func rounds(rps ...float64) []result {
	out := make([]result, len(rps))
	for i, r := range rps {
		out[i] = result{Reqs: int(r), Elapsed: time.Second}
	}
	return out
}

func TestPairedEstimate(t *testing.T) {
	// Every round's ratio the same: the interval is that point.
	e := pairedEstimate(rounds(1000, 2000, 4000), rounds(950, 1900, 3800))
	if math.Abs(e.Ratio-0.95) > 1e-9 || math.Abs(e.Lo-0.95) > 1e-9 || math.Abs(e.Hi-0.95) > 1e-9 || e.Rounds != 3 || e.Batches != 3 {
		t.Fatalf("constant ratio: %+v", e)
	}
	if got := e.atLeast(0.95); got != "holds" {
		t.Errorf("atLeast = %q", got)
	}
	// Ratios 0.9 and 1.1: geometric mean sqrt(0.99); the log-sd of two
	// values is |a-b|/√2, its standard error |a-b|/2; t(1) = 12.706.
	e = pairedEstimate(rounds(1000, 1000), rounds(900, 1100))
	wantLo := math.Exp(math.Log(0.99)/2 - 12.706*math.Log(1.1/0.9)/2)
	if math.Abs(e.Ratio-math.Sqrt(0.99)) > 1e-9 || math.Abs(e.Lo-wantLo) > 1e-6 || math.Abs(e.Lo*e.Hi-0.99) > 1e-9 {
		t.Fatalf("two rounds: %+v, want lo %v", e, wantLo)
	}
	if got := e.atLeast(0.95); !strings.HasPrefix(got, "not decided") {
		t.Errorf("wide interval decided: %q", got)
	}
	if got := pairedEstimate(rounds(1000, 1000), rounds(800, 810)).atLeast(0.95); got != "not met" {
		t.Errorf("clearly below: %q", got)
	}
	if e := pairedEstimate(nil, nil); e.Rounds != 0 || !strings.HasPrefix(e.atLeast(0.95), "not decided") {
		t.Errorf("no rounds: %+v", e)
	}
}

// TestPairedEstimateBatches: with 12 or more rounds the interval is over
// batches of 6. Rounds alternating 0.9 and 1.1 cancel inside every batch,
// so the batch means agree and the interval is narrow; the same ratios in
// runs of 6 (slow noise) give a wide one.
func TestPairedEstimateBatches(t *testing.T) {
	var x, fast, slow []float64
	for i := range 24 {
		x = append(x, 1000)
		fast = append(fast, []float64{900, 1100}[i%2])
		slow = append(slow, []float64{900, 1100}[(i/6)%2])
	}
	ef, es := pairedEstimate(rounds(x...), rounds(fast...)), pairedEstimate(rounds(x...), rounds(slow...))
	if ef.Batches != 4 || es.Batches != 4 || ef.Rounds != 24 || math.Abs(ef.Ratio-es.Ratio) > 1e-9 {
		t.Fatalf("batches: fast %+v slow %+v", ef, es)
	}
	if ef.Hi-ef.Lo > 1e-9 || es.Hi-es.Lo < 0.1 {
		t.Errorf("fast noise should cancel within batches, slow noise should not: fast %v, slow %v", ef, es)
	}
	// A trailing partial batch is left out.
	if e := pairedEstimate(rounds(append(x, 1000)...), rounds(append(fast, 500)...)); e.Rounds != 24 || e.Batches != 4 {
		t.Errorf("partial batch: %+v", e)
	}
	// A round in which (c) served nothing is counted, not hidden.
	e := pairedEstimate(rounds(1000, 1000, 1000), rounds(950, 0, 960))
	if e.Dropped != 1 || !strings.Contains(e.String(), "1 rounds left out") || !strings.HasPrefix(e.atLeast(0.9), "not decided") {
		t.Errorf("dropped round: %+v %q", e, e.String())
	}
}

func TestTQuantile(t *testing.T) {
	for _, c := range []struct {
		df   int
		want float64
	}{{1, 12.706}, {10, 2.228}, {30, 2.042}, {31, 2.040}, {40, 2.021}, {60, 2.000}, {120, 1.980}, {121, 1.980}, {1000, 1.962}} {
		if got := tQuantile975(c.df); math.Abs(got-c.want) > 0.001 {
			t.Errorf("t(%d) = %v, want %v", c.df, got, c.want)
		}
	}
}

func TestPercentile(t *testing.T) {
	tests := []struct {
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		{nil, 0.5, 0},
		{[]time.Duration{5}, 0.99, 5},
		{[]time.Duration{4, 1, 3, 2}, 0.5, 2},
		{[]time.Duration{4, 1, 3, 2}, 0.99, 4},
		{[]time.Duration{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 0.9, 9},
	}
	for _, tt := range tests {
		if got := percentile(append([]time.Duration(nil), tt.in...), tt.q); got != tt.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tt.in, tt.q, got, tt.want)
		}
	}
}

func TestHalvesP99(t *testing.T) {
	rounds := make([]result, 4)
	lats := [][]time.Duration{{10, 10}, {1, 1}, {10, 30}, {2, 1}}
	if got := halvesP99(rounds, lats); got != 28 {
		t.Fatalf("halvesP99 = %v, want 30-2", got)
	}
}

func TestRoundOrderAndRatios(t *testing.T) {
	if got := balancedOrder(4, 0); !reflect.DeepEqual(got, []int{0, 1, 3, 2}) {
		t.Errorf("first row for 4: %v", got)
	}
	// Over one full design every case is in every position equally often
	// and follows every other case equally often.
	for n := 2; n <= 5; n++ {
		rows := n
		if n%2 == 1 {
			rows = 2 * n
		}
		pos := map[[2]int]int{}
		next := map[[2]int]int{}
		for r := range rows {
			o := balancedOrder(n, r)
			seen := map[int]bool{}
			for i, c := range o {
				if c < 0 || c >= n || seen[c] {
					t.Fatalf("n=%d round %d: %v is not a permutation", n, r, o)
				}
				seen[c] = true
				pos[[2]int{c, i}]++
				if i > 0 {
					next[[2]int{o[i-1], c}]++
				}
			}
		}
		for _, m := range []map[[2]int]int{pos, next} {
			want := -1
			for k, v := range m {
				if want == -1 {
					want = v
				}
				if v != want {
					t.Errorf("n=%d: %v occurs %d times, others %d", n, k, v, want)
				}
			}
		}
		if len(next) != n*(n-1) {
			t.Errorf("n=%d: %d ordered pairs adjacent, want %d", n, len(next), n*(n-1))
		}
	}
	x := []result{{Reqs: 100, Elapsed: 1e9}, {Reqs: 200, Elapsed: 1e9}}
	y := []result{{Reqs: 90, Elapsed: 1e9}, {Reqs: 300, Elapsed: 1e9}}
	if got := pairedRatios(x, y); !reflect.DeepEqual(got, []float64{0.9, 1.5}) {
		t.Errorf("pairedRatios %v", got)
	}
	if got := median([]float64{1, 2, 3}); got != 2 {
		t.Errorf("median odd %v", got)
	}
	if got := median([]float64{1, 2, 3, 5}); got != 2.5 {
		t.Errorf("median even %v", got)
	}
	if shortName("(b') reverse_proxy") != "(b')" || shortName("x") != "x" {
		t.Error("shortName")
	}
}

// TestPairedCPUEstimate: the CPU estimate is x's CPU per request over y's,
// round by round, whatever the throughput did.
func TestPairedCPUEstimate(t *testing.T) {
	mk := func(reqs int, cpu time.Duration) result {
		return result{Reqs: reqs, Elapsed: time.Second, CaddyCPU: cpu}
	}
	var x, y []result
	for i := range 12 {
		reqs := 1000 + 500*(i%3) // throughput moves from round to round
		x = append(x, mk(reqs, time.Duration(reqs)*100*time.Microsecond))
		y = append(y, mk(reqs/2, time.Duration(reqs/2)*105*time.Microsecond))
	}
	e := pairedCPUEstimate(x, y)
	if math.Abs(e.Ratio-100.0/105) > 1e-9 || e.Rounds != 12 || e.Batches != 2 {
		t.Fatalf("got %+v, want ratio %.4f over 12 rounds in 2 batches", e, 100.0/105)
	}
	if thr := pairedEstimate(x, y); math.Abs(thr.Ratio-0.5) > 1e-2 {
		t.Fatalf("throughput estimate %+v, want about 0.5", thr)
	}
}
