package tmpsz

import (
	"strconv"
	"testing"

	"github.com/cano-nats/cano/internal/wire/demo"
	"github.com/cano-nats/cano/pkg/fsm"
	"github.com/cano-nats/cano/pkg/join"
	"github.com/cano-nats/cano/pkg/protocol"
)

func TestSize(t *testing.T) {
	for _, n := range []int{100, 1000, 10000} {
		tasks := make([]fsm.Task, n)
		for i := range tasks {
			tasks[i] = demo.Noop{Next: "done"}
		}
		w := fsm.New[string]("split_"+strconv.Itoa(n), "split").
			RegisterSplit("split", tasks, fsm.JoinConfig[string]{Strategy: join.All(), JoinState: "done"}).Exit("done")
		d, err := w.Definition()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := protocol.Encode(d)
		sp := *d.States[0].Split
		sp.Compact()
		d.States[0].Split = &sp
		c, _ := protocol.Encode(d)
		t.Logf("n=%d full %d bytes (%d/branch), compact %d (%d/branch), task %+v", n, len(b), len(b)/n, len(c), len(c)/n, sp.Common)
	}
}
