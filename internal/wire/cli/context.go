package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// natsContext is the part of a nats CLI context file that connecting needs.
// The nats CLI writes these files (nats context add) under
// ~/.config/nats/context/<name>.json.
type natsContext struct {
	URL      string `json:"url"`
	Token    string `json:"token"`
	User     string `json:"user"`
	Password string `json:"password"`
	Creds    string `json:"creds"`
	NKey     string `json:"nkey"`
	Cert     string `json:"cert"`
	Key      string `json:"key"`
	CA       string `json:"ca"`
}

// natsConfigDir is the nats CLI's configuration directory:
// $XDG_CONFIG_HOME/nats, or ~/.config/nats.
func natsConfigDir(lookup func(string) (string, bool)) (string, error) {
	if v, ok := lookup("XDG_CONFIG_HOME"); ok && v != "" {
		return filepath.Join(v, "nats"), nil
	}
	home, ok := lookup("HOME")
	if !ok || home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("cannot find the nats CLI contexts: %w", err)
		}
		home = h
	}
	return filepath.Join(home, ".config", "nats"), nil
}

// ApplyContext fills the fields that are still empty from a nats CLI
// context, so the precedence is: flag, then environment variable, then
// context, then default. The context is c.Context (flag --context,
// environment NATS_CONTEXT) or, when that is empty, the one selected with
// `nats context select` (the file context.txt next to the context
// directory); with neither, ApplyContext does nothing. A context named
// explicitly that does not exist, or a file that does not parse, is an
// error that names the file. lookup defaults to [os.LookupEnv]; it is used
// for XDG_CONFIG_HOME and HOME.
func (c *NATSConfig) ApplyContext(lookup func(string) (string, bool)) error {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	dir, err := natsConfigDir(lookup)
	if err != nil {
		if c.Context == "" {
			return nil
		}
		return err
	}
	name, explicit := c.Context, c.Context != ""
	if !explicit {
		b, err := os.ReadFile(filepath.Join(dir, "context.txt"))
		if err != nil {
			return nil // nothing selected
		}
		name = strings.TrimSpace(string(b))
		if name == "" {
			return nil
		}
	}
	if name != filepath.Base(name) || strings.HasPrefix(name, ".") {
		return fmt.Errorf("invalid nats context name %q: give the name of a file in %s without .json", name, filepath.Join(dir, "context"))
	}
	path := filepath.Join(dir, "context", name+".json")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unknown nats context %q: %s does not exist (list contexts with: nats context ls)", name, path)
	}
	if err != nil {
		return fmt.Errorf("cannot read nats context %q: %w", name, err)
	}
	var nctx natsContext
	if err := json.Unmarshal(b, &nctx); err != nil {
		return fmt.Errorf("cannot parse nats context file %s: %w", path, err)
	}
	home, _ := lookup("HOME")
	fill := func(field *string, v string, isPath bool) {
		if *field != "" || v == "" {
			return
		}
		if isPath && home != "" && strings.HasPrefix(v, "~/") {
			v = filepath.Join(home, v[2:])
		}
		*field = v
	}
	fill(&c.URL, nctx.URL, false)
	fill(&c.Token, nctx.Token, false)
	fill(&c.User, nctx.User, false)
	fill(&c.Password, nctx.Password, false)
	fill(&c.Creds, nctx.Creds, true)
	fill(&c.NKey, nctx.NKey, true)
	fill(&c.TLSCert, nctx.Cert, true)
	fill(&c.TLSKey, nctx.Key, true)
	fill(&c.TLSCA, nctx.CA, true)
	return nil
}
