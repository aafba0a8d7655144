package kvstore_test

import (
	"testing"

	"github.com/cano-nats/cano/pkg/kvstore"
	"github.com/cano-nats/cano/pkg/kvstore/kvstoretest"
)

func TestMemoryConformance(t *testing.T) {
	t.Parallel()
	kvstoretest.RunStoreTests(t, func(t *testing.T) kvstore.Store { return kvstore.NewMemory() })
}

func TestMemoryZeroValue(t *testing.T) {
	t.Parallel()
	kvstoretest.RunStoreTests(t, func(t *testing.T) kvstore.Store { return &kvstore.Memory{} })
}
