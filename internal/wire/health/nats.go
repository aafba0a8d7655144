package health

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Connected is a check that passes while nc is connected to a server.
func Connected(nc *nats.Conn) CheckFunc {
	return func(context.Context) error {
		if st := nc.Status(); st != nats.CONNECTED {
			return fmt.Errorf("not connected to NATS (connection %s)", strings.ToLower(st.String()))
		}
		return nil
	}
}

// Streams is a check that passes when every stream in names exists (a KV
// bucket is the stream "KV_<bucket>"). It asks the server for each
// stream's info, so it needs $JS.API.STREAM.INFO.<name> permission.
//
// Without a connection it fails at once (Connected says why) rather than
// wait for answers that cannot come until the check's timeout, so that a
// probe during an outage answers "not connected" promptly.
func Streams(js jetstream.JetStream, names []string) CheckFunc {
	return func(ctx context.Context) error {
		if nc := js.Conn(); nc != nil && !nc.IsConnected() {
			return errors.New("cannot read streams: not connected to NATS")
		}
		var missing []string
		for _, name := range names {
			_, err := js.Stream(ctx, name)
			switch {
			case err == nil:
			case errors.Is(err, jetstream.ErrStreamNotFound):
				missing = append(missing, name)
			default:
				return fmt.Errorf("cannot read stream %s: %w", name, err)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("missing streams or buckets: %s (a coordinator creates them; is one running with the same -prefix?)",
				strings.Join(missing, ", "))
		}
		return nil
	}
}
