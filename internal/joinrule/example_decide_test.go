package joinrule_test

import (
	"fmt"

	"github.com/cano-nats/cano/internal/joinrule"
	"github.com/cano-nats/cano/pkg/join"
)

// A quorum of 2 out of 4 is met by the second success: the join does not
// wait for the slower branches.
func ExampleDecide() {
	spec := join.Quorum(2).Spec()
	c := joinrule.Counts{Total: 4}
	for _, ok := range []bool{true, false, true} {
		if ok {
			c.Succeeded++
		} else {
			c.Failed++
		}
		fmt.Println(joinrule.Decide(spec, c))
	}
	// Output:
	// pending
	// pending
	// satisfied
}
