// Package canoctl is the logic of the canoctl command: a CLI that triggers,
// watches, inspects and cancels runs, and lists and manages workflows,
// flows, circuit breakers, workers and dead letters, built only on the
// public API (package client and the scheduler's client).
//
// # Usage
//
//	canoctl [connection flags] COMMAND [SUBCOMMAND] [ARGS] [FLAGS]
//
// Flags may come before or after the command words. Every command accepts
// the connection flags of the nats CLI (-s/--server, --creds, --nkey,
// --user, --password, --token, --tlscert, --tlskey, --tlsca, --context and
// their NATS_* variables), --prefix, --timeout and --json.
//
// canoctl help, -h or --help prints the commands, canoctl GROUP help (or
// GROUP -h) a group's subcommands, and canoctl COMMAND -h a command's
// flags: on stdout, exiting 0.
//
// # Exit codes
//
// 0 on success; 1 when a command fails (an unreachable server, an unknown
// run or workflow, a run that did not complete for trigger --wait); 2 for
// a bad command line. Errors are one line on stderr, starting "canoctl: ".
package canoctl
