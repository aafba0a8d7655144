package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestApplyContext(t *testing.T) {
	home := t.TempDir()
	dir := filepath.Join(home, ".config", "nats", "context")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	write := func(name, body string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name+".json"), []byte(body), 0o600))
	}
	write("prod", `{"description":"prod","url":"nats://prod:4222","user":"ops","password":"pw","creds":"~/prod.creds"}`)
	write("dev", `{"url":"nats://dev:4222","token":"t0k"}`)
	write("broken", `{"url":`)
	env := map[string]string{"HOME": home}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	tests := []struct {
		name     string
		cfg      NATSConfig
		selected string
		want     NATSConfig
		err      string
	}{
		{name: "nothing selected", cfg: NATSConfig{}, want: NATSConfig{}},
		{name: "named context fills empty fields", cfg: NATSConfig{Context: "prod"},
			want: NATSConfig{Context: "prod", URL: "nats://prod:4222", User: "ops", Password: "pw", Creds: filepath.Join(home, "prod.creds")}},
		{name: "flags and variables win", cfg: NATSConfig{Context: "prod", URL: "nats://flag:1"},
			want: NATSConfig{Context: "prod", URL: "nats://flag:1", User: "ops", Password: "pw", Creds: filepath.Join(home, "prod.creds")}},
		{name: "selected context", selected: "dev", want: NATSConfig{URL: "nats://dev:4222", Token: "t0k"}},
		{name: "unknown context", cfg: NATSConfig{Context: "nope"}, err: `unknown nats context "nope"`},
		{name: "bad file", cfg: NATSConfig{Context: "broken"}, err: "cannot parse nats context file"},
		{name: "path in name", cfg: NATSConfig{Context: "../x"}, err: "invalid nats context name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sel := filepath.Join(home, ".config", "nats", "context.txt")
			_ = os.Remove(sel)
			if tc.selected != "" {
				require.NoError(t, os.WriteFile(sel, []byte(tc.selected+"\n"), 0o600))
			}
			cfg := tc.cfg
			err := cfg.ApplyContext(lookup)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, cfg)
		})
	}
}
