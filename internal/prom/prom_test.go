package prom

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestRegisterShares: a second instance registering an equal collector
// gets the first one's; a clashing one is refused.
func TestRegisterShares(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "things_total", Help: "Things."}
	first, err := Register(reg, prometheus.NewCounterVec(opts, []string{"kind"}))
	if err != nil {
		t.Fatal(err)
	}
	second, err := Register(reg, prometheus.NewCounterVec(opts, []string{"kind"}))
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Fatal("the second registration did not get the first collector")
	}
	if _, err := Register(reg, prometheus.NewCounterVec(opts, []string{"other"})); err == nil {
		t.Fatal("a collector with other labels under the same name was accepted")
	}
}
