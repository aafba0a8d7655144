// Package embedded runs an in-process NATS server with JetStream: the broker
// for `coordinator -dev`, for tests, and for a three-node cluster on loopback.
//
// A Server owns its nats-server; Stop shuts it down and waits for it.
package embedded
