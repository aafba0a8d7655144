package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestFiguresKeyedByScenario(t *testing.T) {
	got, err := figures([]byte(`{"machine":"m","results":[
		{"scenario":"onetask","figures":{"runs_per_s":100,"cpu_us_per_run":50}},
		{"scenario":"chain","figures":{"transitions_per_s":300}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"onetask/runs_per_s": 100, "onetask/cpu_us_per_run": 50, "chain/transitions_per_s": 300}
	if len(got) != len(want) {
		t.Fatalf("figures = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("figures[%q] = %v, want %v", k, got[k], v)
		}
	}
	if _, err := figures([]byte("onetask runs_per_s 100")); err == nil || !strings.Contains(err.Error(), "-json") {
		t.Errorf("text output: err = %v, want one naming canobench -json", err)
	}
}

func TestQuartiles(t *testing.T) {
	for _, tc := range []struct {
		xs          []float64
		q1, med, q3 float64
	}{
		{[]float64{5}, 5, 5, 5},
		{[]float64{4, 1, 3, 2}, 1.75, 2.5, 3.25},
		{[]float64{1, 2, 3, 4, 5}, 2, 3, 4},
	} {
		q1, med, q3 := quartiles(tc.xs)
		if q1 != tc.q1 || med != tc.med || q3 != tc.q3 {
			t.Errorf("quartiles(%v) = %v, %v, %v; want %v, %v, %v", tc.xs, q1, med, q3, tc.q1, tc.med, tc.q3)
		}
	}
}

func TestSummariseRatiosOfPairs(t *testing.T) {
	// B is 10 % faster in every pair, while the machine's speed halves
	// from one pair to the next: the pair ratios see only the 10 %.
	a := []map[string]float64{{"onetask/runs_per_s": 100}, {"onetask/runs_per_s": 50}, {"onetask/runs_per_s": 25}}
	b := []map[string]float64{{"onetask/runs_per_s": 110}, {"onetask/runs_per_s": 55}, {"onetask/runs_per_s": 27.5, "only/b": 1}}
	rows := summarise(a, b)
	if len(rows) != 1 {
		t.Fatalf("rows = %+v, want one (a figure only B has is left out)", rows)
	}
	r := rows[0]
	if r.name != "onetask/runs_per_s" || r.n != 3 || r.a != 50 || r.b != 55 {
		t.Errorf("row = %+v", r)
	}
	for _, q := range []float64{r.q1, r.med, r.q3} {
		if q < 1.0999 || q > 1.1001 {
			t.Errorf("ratio quartiles %v, %v, %v; want 1.1", r.q1, r.med, r.q3)
		}
	}
	var out bytes.Buffer
	write(&out, rows)
	if !strings.Contains(out.String(), "1.100 (1.100–1.100), 3") {
		t.Errorf("output:\n%s", out.String())
	}
}
