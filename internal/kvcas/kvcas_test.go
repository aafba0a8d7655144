package kvcas_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/internal/kvcas"
	"github.com/cano-nats/cano/internal/natstest"
)

// TestConflictFromServer provokes each kind of lost compare-and-set on a
// real server and checks Conflict recognises it, and that the other
// answers (success, a missing key) are not conflicts.
func TestConflictFromServer(t *testing.T) {
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "cas"})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := kv.Create(ctx, "k", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Update(ctx, "k", []byte("2"), rev); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, "gone", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}

	// A terminal run-record write: a publish to the key's subject with the
	// expected last sequence, as pkg/coordinator's updateRecord sends it.
	publishOver := func(rev uint64) error {
		msg := &nats.Msg{Subject: "$KV.cas.k", Data: []byte("3"), Header: nats.Header{}}
		msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(rev, 10))
		_, err := js.PublishMsg(ctx, msg)
		return kvcas.Mark(err)
	}

	for _, tc := range []struct {
		name     string
		err      func() error
		conflict bool
	}{
		{"create over an existing key", func() error { _, err := kv.Create(ctx, "k", []byte("x")); return err }, true},
		{"update at a stale revision", func() error { _, err := kv.Update(ctx, "k", []byte("x"), rev); return err }, true},
		{"update of a key never written", func() error { _, err := kv.Update(ctx, "none", []byte("x"), 7); return err }, true},
		{"delete at a stale revision", func() error { return kv.Delete(ctx, "k", jetstream.LastRevision(rev)) }, true},
		{"publish at a stale revision", func() error { return publishOver(rev) }, true},
		{"create over a deleted key", func() error { _, err := kv.Create(ctx, "gone", []byte("y")); return err }, false},
		{"get of a missing key", func() error { _, err := kv.Get(ctx, "none"); return err }, false},
		{"no error", func() error { return nil }, false},
		{"another error", func() error { return fmt.Errorf("read: %w", context.DeadlineExceeded) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			if got := kvcas.Conflict(err); got != tc.conflict {
				t.Fatalf("Conflict(%v) = %v, want %v", err, got, tc.conflict)
			}
		})
	}
}

// TestMark: a wrong-last-sequence error gains ErrKeyRevisionMismatch
// (both codes, the replicated stream's too); others pass unchanged.
func TestMark(t *testing.T) {
	for _, code := range []jetstream.ErrorCode{jetstream.JSErrCodeStreamWrongLastSequence,
		jetstream.JSErrCodeStreamWrongLastSequenceConstant} {
		err := kvcas.Mark(fmt.Errorf("publish: %w", &jetstream.APIError{Code: 400, ErrorCode: code}))
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) || !kvcas.Conflict(err) {
			t.Fatalf("code %d: Mark gave %v, not a revision mismatch", code, err)
		}
	}
	other := errors.New("no responders")
	if kvcas.Mark(other) != other || kvcas.Mark(nil) != nil {
		t.Fatal("Mark changed an error that is not a conflict")
	}
	once := kvcas.Mark(&jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeStreamWrongLastSequence})
	if kvcas.Mark(once) != once {
		t.Fatal("Mark wrapped a marked error again")
	}
}
