package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// estimate is a throughput ratio with its 95 % confidence interval, from
// paired rounds: in each round both cases ran back to back, so what moved
// the machine's speed for a few seconds moves both and mostly cancels in
// their ratio. The estimate is the geometric mean of the per-round ratios.
// The interval is Student's t on the logarithms, taken over batches of
// consecutive rounds (batch means) rather than over single rounds, so that
// noise lasting a few rounds widens it instead of being counted as
// independent evidence.
type estimate struct {
	Ratio, Lo, Hi float64
	Rounds        int // rounds used
	Batches       int // batches the interval is taken over
	Dropped       int // rounds left out: a case served no request
}

// estimateBatch is the batch size: one full cycle of balancedOrder for the
// three cases of the main comparison (every case in every position).
const estimateBatch = 6

// pairedEstimate is the estimate of y/x throughput over the rounds both ran.
// Rounds come in batches of estimateBatch; a trailing partial batch is left
// out, and with fewer than two full batches each round is its own batch.
func pairedEstimate(x, y []result) estimate { return estimateOf(pairedRatios(x, y)) }

// pairedCPUEstimate is the estimate of x/y Caddy CPU per request: the y/x
// throughput Caddy would reach on CPUs of its own. When other jobs move
// the shared host's speed, CPU time per request moves less than
// throughput does.
func pairedCPUEstimate(x, y []result) estimate {
	out := make([]float64, 0, len(x))
	for i := range min(len(x), len(y)) {
		out = append(out, ratio(float64(x[i].CPUPerReq()), float64(y[i].CPUPerReq())))
	}
	return estimateOf(out)
}

// estimateOf is the estimate from per-round ratios.
func estimateOf(ratios []float64) estimate {
	var logs []float64
	var e estimate
	for _, r := range ratios {
		if r > 0 && !math.IsInf(r, 0) && !math.IsNaN(r) {
			logs = append(logs, math.Log(r))
		} else {
			e.Dropped++
		}
	}
	batch := estimateBatch
	if len(logs) < 2*batch {
		batch = 1
	}
	logs = logs[:len(logs)/batch*batch]
	e.Rounds, e.Batches = len(logs), len(logs)/batch
	if e.Rounds == 0 {
		return e
	}
	means := make([]float64, e.Batches)
	var mean float64
	for i, l := range logs {
		means[i/batch] += l / float64(batch)
		mean += l / float64(len(logs))
	}
	e.Ratio, e.Lo, e.Hi = math.Exp(mean), 0, math.Inf(1)
	if e.Batches < 2 {
		return e
	}
	var ss float64
	for _, m := range means {
		ss += (m - mean) * (m - mean)
	}
	n := float64(e.Batches)
	half := tQuantile975(e.Batches-1) * math.Sqrt(ss/(n-1)/n)
	e.Lo, e.Hi = math.Exp(mean-half), math.Exp(mean+half)
	return e
}

// String is "ratio (95 % CI lo–hi; R rounds in B batches)", as the report
// prints it.
func (e estimate) String() string {
	s := fmt.Sprintf("%.3f (95 %% CI %.3f–%.3f; %d rounds in %d batches)", e.Ratio, e.Lo, e.Hi, e.Rounds, e.Batches)
	if e.Batches < 2 {
		s = fmt.Sprintf("%.3f (%d rounds: too few for an interval)", e.Ratio, e.Rounds)
	}
	if e.Dropped > 0 {
		s += fmt.Sprintf(", %d rounds left out because a case served no request", e.Dropped)
	}
	return s
}

// atLeast says whether the interval shows the ratio is at least goal.
func (e estimate) atLeast(goal float64) string {
	switch {
	case e.Batches < 2 || e.Dropped > 0:
		return "not decided (too few rounds, or rounds without requests)"
	case e.Lo >= goal:
		return "holds"
	case e.Hi < goal:
		return "not met"
	default:
		return "not decided at this precision (the interval contains the goal; more rounds narrow it)"
	}
}

// tQuantile975 is the 0.975 quantile of Student's t with df degrees of
// freedom (two-sided 95 %): a table up to 30, then the Cornish-Fisher
// expansion around the normal quantile (within 0.001 of the exact value).
func tQuantile975(df int) float64 {
	table := [...]float64{12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
		2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
		2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042}
	switch {
	case df < 1:
		return math.Inf(1)
	case df <= len(table):
		return table[df-1]
	}
	const z = 1.959964
	v := float64(df)
	return z + (z*z*z+z)/(4*v) + (5*math.Pow(z, 5)+16*z*z*z+3*z)/(96*v*v)
}

// balancedOrder is the order in which the n cases of a round run, from a
// Williams design: over n rounds (2n for odd n) every case runs in every
// position equally often and follows every other case equally often, so
// that neither a drift of the machine's speed nor what ran just before
// favours one case. -rounds a multiple of 6 balances n = 2 and n = 3.
func balancedOrder(n, round int) []int {
	first := make([]int, n) // 0, 1, n-1, 2, n-2, ...
	lo, hi := 1, n-1
	for i := 1; i < n; i++ {
		if i%2 == 1 {
			first[i] = lo
			lo++
		} else {
			first[i] = hi
			hi--
		}
	}
	rows := n
	if n%2 == 1 {
		rows = 2 * n
	}
	r := round % rows
	order := make([]int, n)
	for i := range order {
		order[i] = (first[i] + r) % n
	}
	if r >= n {
		slices.Reverse(order)
	}
	return order
}

// pairedRatios is y/x throughput for each round.
func pairedRatios(x, y []result) []float64 {
	out := make([]float64, 0, len(x))
	for i := range min(len(x), len(y)) {
		out = append(out, ratio(y[i].RPS(), x[i].RPS()))
	}
	return out
}

// halvesP99 is the p99 of the odd rounds minus the p99 of the even rounds
// (counting from 1) of one case.
func halvesP99(rounds []result, lats [][]time.Duration) time.Duration {
	var h [2][]time.Duration
	for i := range rounds {
		h[i%2] = append(h[i%2], lats[i]...)
	}
	return percentile(h[0], 0.99) - percentile(h[1], 0.99)
}

// interleave runs n cases in rounds, each round in balancedOrder, and
// returns each case's results and latencies per round. With logf, it logs
// every round's throughput and Caddy CPU per request.
func interleave(n, rounds int, run func(i int) (result, []time.Duration), logf func(string, ...any)) ([][]result, [][][]time.Duration) {
	rs := make([][]result, n)
	ls := make([][][]time.Duration, n)
	for round := range rounds {
		var line strings.Builder
		for _, i := range balancedOrder(n, round) {
			r, l := run(i)
			rs[i] = append(rs[i], r)
			ls[i] = append(ls[i], l)
			fmt.Fprintf(&line, " %s %.0f/s %sµs", shortName(r.Name), r.RPS(), usNum(r.CPUPerReq()))
		}
		if logf != nil {
			logf("round %d:%s", round+1, line.String())
		}
	}
	return rs, ls
}

// percentile returns the q-quantile (nearest rank) of d; it sorts d.
func percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	if !slices.IsSorted(d) {
		slices.Sort(d)
	}
	i := int(math.Ceil(q*float64(len(d)))) - 1
	return d[max(0, min(i, len(d)-1))]
}

// median of sorted values.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}
