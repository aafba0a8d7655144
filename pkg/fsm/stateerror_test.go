package fsm_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cano-nats/cano/pkg/fsm"
)

func TestStateErrorText(t *testing.T) {
	t.Parallel()
	cause := errors.New("cancelled: not needed")
	require.Equal(t, `in state "charge" (attempt 2, path validate → charge): cancelled: not needed`,
		(&fsm.StateError{State: "charge", Attempt: 2, Path: []string{"validate", "charge"}, Cause: cause}).Error())
	require.Equal(t, `in state "charge" (path validate → charge): cancelled: not needed`,
		(&fsm.StateError{State: "charge", Path: []string{"validate", "charge"}, Cause: cause}).Error(),
		"no attempt counted: none printed")
}
