package main

import (
	"fmt"
	"math"
)

// estimate is a throughput ratio with its 95 % confidence interval, from
// paired rounds: in each round both cases ran back to back, so what moved
// the machine's speed for a few seconds moves both and cancels in their
// ratio. The estimate is the geometric mean of the per-round ratios; the
// interval is Student's t on their logarithms.
type estimate struct {
	Ratio, Lo, Hi float64
	N             int
}

// pairedEstimate is the estimate of y/x throughput over the rounds both ran.
func pairedEstimate(x, y []result) estimate {
	var logs []float64
	for _, r := range pairedRatios(x, y) {
		if r > 0 {
			logs = append(logs, math.Log(r))
		}
	}
	n := len(logs)
	if n == 0 {
		return estimate{}
	}
	var mean float64
	for _, l := range logs {
		mean += l
	}
	mean /= float64(n)
	if n == 1 {
		return estimate{Ratio: math.Exp(mean), Lo: math.Inf(-1), Hi: math.Inf(1), N: 1}
	}
	var ss float64
	for _, l := range logs {
		ss += (l - mean) * (l - mean)
	}
	half := tQuantile975(n-1) * math.Sqrt(ss/float64(n-1)/float64(n))
	return estimate{Ratio: math.Exp(mean), Lo: math.Exp(mean - half), Hi: math.Exp(mean + half), N: n}
}

// String is "0.943 (95 % CI 0.917–0.969, 120 rounds)".
func (e estimate) String() string {
	if e.N < 2 {
		return fmt.Sprintf("%.3f (one round: no interval)", e.Ratio)
	}
	return fmt.Sprintf("%.3f (95 %% CI %.3f–%.3f, %d rounds)", e.Ratio, e.Lo, e.Hi, e.N)
}

// atLeast says whether the interval shows the ratio is at least goal.
func (e estimate) atLeast(goal float64) string {
	switch {
	case e.N >= 2 && e.Lo >= goal:
		return "holds"
	case e.N >= 2 && e.Hi < goal:
		return "not met"
	default:
		return "not decided at this precision (the interval contains the goal; more or longer rounds narrow it)"
	}
}

// tQuantile975 is the 0.975 quantile of Student's t with df degrees of
// freedom (two-sided 95 %).
func tQuantile975(df int) float64 {
	table := [...]float64{12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
		2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
		2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042}
	switch {
	case df < 1:
		return math.Inf(1)
	case df <= len(table):
		return table[df-1]
	case df <= 60:
		return 2.000 + (2.042-2.000)*float64(60-df)/30
	case df <= 120:
		return 1.980 + (2.000-1.980)*float64(120-df)/60
	default:
		return 1.960
	}
}
