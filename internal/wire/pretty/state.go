package pretty

import (
	"fmt"
	"strings"

	"github.com/cano-nats/cano/pkg/client"
)

// StateTasks is what a workflow state runs, for people: a task state's
// kind with its parameters ("charge {"cents":500}"), a split's branches
// so, comma-separated; "" for an exit.
func StateTasks(s client.StateInfo) string {
	switch s.Kind {
	case client.StateSplit:
		labels := make([]string, len(s.Branches))
		for i, b := range s.Branches {
			labels[i] = task(b, at(s.BranchParams, i))
		}
		return strings.Join(labels, ", ")
	case client.StateExit:
		return ""
	}
	return task(s.Task, s.Params)
}

// StateAttempts says how a state's task attempts are made ("3 retries
// from 100ms ×2 up to 30s, jitter 0.1, attempt timeout 2s, breaker
// payments"); for a split, its branches' policy when they share one, else
// "per branch".
func StateAttempts(s client.StateInfo) string {
	if s.Kind != client.StateSplit {
		return policy(s.Policy)
	}
	seen := map[string]bool{}
	for _, p := range s.BranchPolicies {
		seen[policy(p)] = true
	}
	switch len(seen) {
	case 0:
		return ""
	case 1:
		return policy(s.BranchPolicies[0])
	}
	return "per branch"
}

// task is a task kind with its parameters, cut to 60 bytes.
func task(kind string, params []byte) string {
	if p := Text(params, 60); p != "" && p != "{}" {
		return kind + " " + p
	}
	return kind
}

func at(bs [][]byte, i int) []byte {
	if i < len(bs) {
		return bs[i]
	}
	return nil
}

func policy(p *client.TaskPolicy) string {
	if p == nil {
		return ""
	}
	var parts []string
	switch p.Retry {
	case "none", "":
		parts = append(parts, "no retry")
	case "fixed":
		parts = append(parts, fmt.Sprintf("%d retries every %s", p.MaxRetries, p.Delay))
	default:
		r := fmt.Sprintf("%d retries from %s ×%g", p.MaxRetries, p.Delay, p.Multiplier)
		if p.MaxDelay > 0 {
			r += " up to " + p.MaxDelay.String()
		}
		if p.Jitter > 0 {
			r += fmt.Sprintf(", jitter %g", p.Jitter)
		}
		parts = append(parts, r)
	}
	if p.AttemptTimeout > 0 {
		parts = append(parts, "attempt timeout "+p.AttemptTimeout.String())
	}
	if p.Breaker != "" {
		parts = append(parts, "breaker "+p.Breaker)
	}
	return strings.Join(parts, ", ")
}
