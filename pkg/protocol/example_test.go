package protocol_test

import (
	"fmt"

	"github.com/cano-nats/cano/pkg/protocol"
)

// Names builds the subjects of one deployment from its prefix.
func ExampleNames() {
	names, err := protocol.NewNames("team-a")
	if err != nil {
		panic(err)
	}
	fmt.Println(names.TriggerSubject("billing"))
	fmt.Println(names.EventWildcard())
	fmt.Println(names.TaskSubject("default", "charge"))
	// Output:
	// team-a.trigger.billing
	// team-a.event.>
	// team-a.task.default.charge
}
