package worker

// ResultsToStream returns c for a worker that publishes every result to
// the results stream, never as a request to a coordinator: for the tests
// of that path (a broker refusing results).
func ResultsToStream(c Config) Config {
	c.resultsToStream = true
	return c
}
