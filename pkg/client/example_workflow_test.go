package client_test

import (
	"context"
	"fmt"
	"time"

	"github.com/cano-nats/cano/pkg/client"
)

// Describe a registered workflow, here as a Mermaid diagram: its initial
// state, states with their task kinds, and exits. A task chooses its next
// state at run time, so only the edges the definition knows are drawn
// (split → join state); the taken edges come from runs' paths.
func ExampleClient_Workflow() {
	cl, stop, err := deployment()
	must(err)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	wf, err := cl.Workflow(ctx, "greet", "") // "": the latest version
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("versions:", len(wf.Versions), "latest:", wf.Version == wf.Latest)
	fmt.Println("stateDiagram-v2")
	fmt.Printf("  [*] --> %s\n", wf.Initial)
	for _, s := range wf.States {
		switch s.Kind {
		case client.StateTask:
			fmt.Printf("  %s: %s (task %s)\n", s.Name, s.Name, s.Task)
		case client.StateSplit:
			fmt.Printf("  %s: %s (split %v, join %s)\n", s.Name, s.Name, s.Branches, s.Join.Strategy)
		case client.StateExit:
			fmt.Printf("  %s --> [*]\n", s.Name)
		}
		for _, n := range s.Next {
			fmt.Printf("  %s --> %s\n", s.Name, n)
		}
	}
	run, err := cl.Run(ctx, "greet", &client.TriggerOpts{Input: "eve"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := 1; i < len(run.Path); i++ {
		fmt.Printf("  %s --> %s\n", run.Path[i-1], run.Path[i])
	}
	// Output:
	// versions: 1 latest: true
	// stateDiagram-v2
	//   [*] --> hello
	//   hello: hello (task hello)
	//   excited: excited (task excited)
	//   greeted --> [*]
	//   hello --> excited
	//   excited --> greeted
}
