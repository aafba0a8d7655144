package health

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/cano-nats/cano/internal/deadline"
)

// ProbeTimeoutDefault bounds [Probe] when ctx has no deadline.
const ProbeTimeoutDefault = 5 * time.Second

// Probe GETs url and returns nil when it answers 200, or an error with
// the status and the first line of the body. Images without a shell (FROM
// scratch) run it as their container health check:
//
//	coordinator -healthcheck http://127.0.0.1:9090/readyz
func Probe(ctx context.Context, url string) error {
	ctx, cancel := deadline.Default(ctx, ProbeTimeoutDefault)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("health: -healthcheck %q: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
		return fmt.Errorf("health: %s answered %s: %s", url, resp.Status, line)
	}
	return nil
}
