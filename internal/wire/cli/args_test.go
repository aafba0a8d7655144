package cli

import (
	"flag"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNoArgs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string // "" for no error
	}{
		{nil, ""},
		{[]string{"-dev", "-prefix", "x"}, ""},
		{[]string{"dev"}, `unexpected argument "dev": flags start with a dash (did you mean -dev?)`},
		{[]string{"-prefix", "x", "dev", "-listen", "127.0.0.1:1"}, `unexpected argument "dev": flags start with a dash (did you mean -dev?)`},
		{[]string{"start"}, `unexpected argument "start": coordinator takes flags only (see coordinator -h)`},
	} {
		fs := flag.NewFlagSet("coordinator", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.Bool("dev", false, "")
		fs.String("prefix", "", "")
		fs.String("listen", "", "")
		require.NoError(t, fs.Parse(tc.args))
		err := NoArgs(fs)
		if tc.want == "" {
			require.NoError(t, err, "%q", tc.args)
			continue
		}
		require.EqualError(t, err, tc.want, "%q", tc.args)
	}
}
