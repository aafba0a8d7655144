package fsm_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/cano-nats/cano/pkg/fsm"
)

// Fetch keeps its base URL in an unexported field, which msgpack drops.
type Fetch struct {
	Path string `msgpack:"path"`
	base string
}

func (Fetch) Kind() string { return "fetch" }
func (Fetch) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.Next(Done), nil
}

// guarded has unexported fields that are fine: zero, or tagged "-".
type guarded struct {
	N     int `msgpack:"n"`
	mu    sync.Mutex
	cache map[string]int
	note  string `msgpack:"-"`
}

func (*guarded) Kind() string { return "guarded" }
func (g *guarded) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cache = map[string]int{"n": g.N}
	return fsm.Next(Done), nil
}

type settings struct {
	Retries int `msgpack:"retries"`
	token   string
}

// embeds inlines a struct whose unexported field holds a value.
type embeds struct {
	settings
}

func (embeds) Kind() string { return "embeds" }
func (embeds) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.Next(Done), nil
}

// withClient holds a client where its parameters go.
type withClient struct {
	Client *http.Client `msgpack:"client"`
}

func (withClient) Kind() string { return "with_client" }
func (withClient) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.Next(Done), nil
}

// selfEncoded encodes itself, so its unexported field is its own business.
type selfEncoded struct{ secret string }

func (selfEncoded) Kind() string { return "self_encoded" }
func (selfEncoded) Run(context.Context, *fsm.TaskContext) (fsm.Result, error) {
	return fsm.Next(Done), nil
}
func (s selfEncoded) EncodeMsgpack(enc *msgpack.Encoder) error { return enc.EncodeString(s.secret) }

// A task whose value would not reach the workers as it is fails the
// workflow's definition, naming the state, the type and the field, and
// saying where dependencies go instead.
func TestTaskParamsChecked(t *testing.T) {
	t.Parallel()
	const resources = "put dependencies such as clients and pools in the worker's resources (worker.Config.Resources"
	for _, tc := range []struct {
		name string
		wf   *fsm.Workflow[St]
		msgs []string // nil: the definition is fine
	}{
		{"unexported field set", fsm.New[St]("w", "fetch").Register("fetch", Fetch{Path: "/x", base: "https://api"}).Exit(Done),
			[]string{`task for state "fetch" (type Fetch): field base is unexported, so workers would see it empty: ` +
				"task parameters are sent to workers as msgpack; export it, or " + resources}},
		{"pointer", fsm.New[St]("w", "fetch").Register("fetch", &Fetch{base: "https://api"}).Exit(Done),
			[]string{`(type *Fetch): field base is unexported`}},
		{"split branch", fsm.New[St]("w", A).RegisterSplit(A, []fsm.Task{Fetch{}, Fetch{base: "https://api"}},
			fsm.JoinConfig[St]{JoinState: Done}).Exit(Done),
			[]string{`task for split state "a" branch 1 (type Fetch): field base is unexported`}},
		{"embedded struct", fsm.New[St]("w", A).Register(A, embeds{settings{Retries: 1, token: "t"}}).Exit(Done),
			[]string{`(type embeds): field settings.token is unexported`}},
		{"unencodable field", fsm.New[St]("w", A).Register(A, withClient{Client: &http.Client{}}).Exit(Done),
			[]string{`task for state "a" (type withClient): field Client cannot be encoded: `, "msgpack: Encode(unsupported", resources}},
		{"unexported zero", fsm.New[St]("w", "fetch").Register("fetch", Fetch{Path: "/x"}).Exit(Done), nil},
		{"unexported zero or skipped", fsm.New[St]("w", A).Register(A, &guarded{N: 1, note: "local"}).Exit(Done), nil},
		{"custom encoding", fsm.New[St]("w", A).Register(A, selfEncoded{secret: "s"}).Exit(Done), nil},
		{"nil client", fsm.New[St]("w", A).Register(A, withClient{}).Exit(Done), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.wf.Validate()
			if tc.msgs == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, fsm.ErrConfiguration)
			for _, m := range tc.msgs {
				require.ErrorContains(t, err, m)
			}
		})
	}
}
