package cli

import (
	"flag"
	"io"
	"strings"
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
		err := noArgs(fs)
		if tc.want == "" {
			require.NoError(t, err, "%q", tc.args)
			continue
		}
		require.EqualError(t, err, tc.want, "%q", tc.args)
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	newFS := func() *flag.FlagSet {
		fs := flag.NewFlagSet("worker", flag.ContinueOnError)
		fs.Bool("dev", false, "dev `mode`")
		fs.String("prefix", "cano", "the prefix")
		return fs
	}
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		ok       bool
		want     []string // in the output
		wantNone []string // not in it
	}{
		{"flags", []string{"-prefix", "x"}, 0, true, nil, []string{"Usage"}},
		{"-h lists the flags", []string{"-h"}, 0, false, []string{"Usage of worker:", "-prefix string", "the prefix"}, nil},
		{"an unknown flag in one line", []string{"-dve"}, 2, false,
			[]string{"flag provided but not defined: -dve\n", "run worker -h to list its flags\n"}, []string{"Usage", "-prefix"}},
		{"a bad value", []string{"-dev=maybe"}, 2, false, []string{"invalid boolean value", "run worker -h"}, []string{"Usage"}},
		{"a stray word", []string{"dev"}, 2, false, []string{`worker: unexpected argument "dev": flags start with a dash (did you mean -dev?)`}, []string{"Usage"}},
	} {
		var out strings.Builder
		code, ok := ParseFlags(newFS(), tc.args, &out)
		require.Equal(t, tc.code, code, tc.name)
		require.Equal(t, tc.ok, ok, tc.name)
		for _, w := range tc.want {
			require.Contains(t, out.String(), w, tc.name)
		}
		for _, w := range tc.wantNone {
			require.NotContains(t, out.String(), w, tc.name)
		}
	}
}
