// Package cli is the shared plumbing of the thin mains in cmd/ (coordinator,
// worker, canoctl): NATS connection flags and environment variables named as
// the stock nats CLI names them, a [Connect] that reduces a failed
// connection to one clear line, and the slog logger setup.
//
// # Usage
//
//	fs := flag.NewFlagSet("coordinator", flag.ContinueOnError)
//	var natsCfg cli.NATSConfig
//	natsCfg.RegisterFlags(fs)
//	var logCfg cli.LogConfig
//	logCfg.RegisterFlags(fs)
//	if err := fs.Parse(os.Args[1:]); err != nil {
//		os.Exit(2)
//	}
//	natsCfg.ApplyEnv(fs, nil) // NATS_URL, NATS_CREDS, ... where no flag was given
//	logger, err := cli.NewLogger(os.Stderr, logCfg)
//	...
//	nc, err := cli.Connect(ctx, natsCfg)
//	if err != nil {
//		logger.Error(err.Error()) // e.g. "cannot connect to nats://127.0.0.1:4222: connection refused"
//		os.Exit(1)
//	}
//
// # Precedence
//
// A flag given on the command line wins over its environment variable,
// which wins over the default.
package cli
