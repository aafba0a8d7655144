package worker

import (
	"time"

	"github.com/cano-nats/cano/pkg/protocol"
)

// ResultsToStream returns c for a worker that publishes every result to
// the results stream, never as a request to a coordinator: for the tests
// of that path (a broker refusing results).
func ResultsToStream(c Config) Config {
	c.resultsToStream = true
	return c
}

// WithResultTimeout returns c for a worker whose result requests time out
// after d instead of resultRequestTimeout.
func WithResultTimeout(c Config, d time.Duration) Config {
	c.resultTimeout = d
	return c
}

// LosingAnswers returns c for a worker that asks lose about each answer to
// a result request (given the command whose result it answers) and drops
// those it says true for, as lost on the way.
func LosingAnswers(c Config, lose func(cmd *protocol.TaskCommand) bool) Config {
	c.loseAnswer = lose
	return c
}
