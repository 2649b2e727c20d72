package main

import (
	"fmt"
	"math"
	"sort"
)

type stats struct {
	n                       int
	med, p10, p90, min, max float64
}

func summarize(v []float64) stats {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		nan := math.NaN()
		return stats{med: nan, p10: nan, p90: nan, min: nan, max: nan}
	}
	return stats{n: len(s), med: quantile(s, 0.5), p10: quantile(s, 0.1), p90: quantile(s, 0.9), min: s[0], max: s[len(s)-1]}
}

// quantile interpolates linearly between the closest ranks of sorted.
func quantile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	i := int(pos)
	if i+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + (pos-float64(i))*(sorted[i+1]-sorted[i])
}

// table prints a row per runtime, then crossrun's ratio to runc and to
// crun by median, checked against a target when it is not 0 (lower is
// better everywhere). The ratio lines also go to the summary.
func (b *bench) table(what string, res map[string][]float64, format string, runcTarget, crunTarget float64) {
	b.printf("%-10s %4s %9s %9s %9s %9s %9s\n", "runtime", "n", "median", "p10", "p90", "min", "max")
	for _, p := range b.peers {
		v, ok := res[p.name]
		if !ok {
			continue
		}
		s := summarize(v)
		f := func(x float64) string { return fmt.Sprintf(format, x) }
		b.printf("%-10s %4d %9s %9s %9s %9s %9s\n", p.name, s.n, f(s.med), f(s.p10), f(s.p90), f(s.min), f(s.max))
	}
	cross := summarize(res["crossrun"]).med
	for _, peer := range []struct {
		name   string
		target float64
	}{{"runc", runcTarget}, {"crun", crunTarget}} {
		var line string
		goal := "no target"
		if peer.target != 0 {
			goal = fmt.Sprintf("target <= %.2f", peer.target)
		}
		if v, ok := res[peer.name]; !ok {
			line = fmt.Sprintf("crossrun/%s n/a, %s not measured (%s: not checked)", peer.name, peer.name, goal)
		} else {
			ratio := cross / summarize(v).med
			verdict := ""
			if peer.target != 0 {
				verdict = ": missed"
				if ratio <= peer.target {
					verdict = ": met"
				}
			}
			shown := fmt.Sprintf("%.2f", ratio)
			if peer.target != 0 && shown == fmt.Sprintf("%.2f", peer.target) {
				// Rounded to the target, two places hide the verdict.
				shown = fmt.Sprintf("%.3f", ratio)
			}
			line = fmt.Sprintf("crossrun/%s %s (%s%s)", peer.name, shown, goal, verdict)
		}
		b.printf("%s\n", line)
		b.summary = append(b.summary, what+": "+line)
	}
}
