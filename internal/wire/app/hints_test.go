package app

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDevHintsPasteIntoAShell checks that the start-up hints survive the
// log's quoting unchanged and that a shell splits them into the intended
// arguments.
func TestDevHintsPasteIntoAShell(t *testing.T) {
	t.Parallel()
	trigger, watch := devHints("", "nats://127.0.0.1:4222")
	cases := []struct {
		cmd  string
		want []string
	}{
		{trigger, []string{"go", "run", "./cmd/canoctl", "-s", "nats://127.0.0.1:4222", "trigger", "parallel_fetch", "--wait"}},
		{watch, []string{"go", "run", "./cmd/canoctl", "-s", "nats://127.0.0.1:4222", "runs", "watch"}},
	}
	for _, c := range cases {
		require.Equal(t, strconv.Quote(c.cmd), `"`+c.cmd+`"`, "the log's quoting changes nothing inside")
		sh, err := exec.LookPath("sh")
		if err != nil {
			t.Skip("no sh")
		}
		out, err := exec.Command(sh, "-c", `printf '%s\n' `+c.cmd).Output()
		require.NoError(t, err)
		require.Equal(t, c.want, strings.Split(strings.TrimSuffix(string(out), "\n"), "\n"))
	}
}
