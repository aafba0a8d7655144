package coordinator

import (
	"errors"

	"github.com/nats-io/nats.go"

	"github.com/cano-nats/cano/internal/wirecodec"
	"github.com/cano-nats/cano/pkg/protocol"
)

// Result requests: a worker sends a task's result as a core NATS request to
// the coordinator that published the command (protocol.HeaderCoordinator on
// the command, protocol.Names.RPCResultSubject), or, when that one is gone,
// to any coordinator (protocol.Names.RPCResultAnySubject, the queue group).
// No stream stores the result: compared with the results stream this saves
// the broker a stored message, a consumer delivery, an acknowledgement and
// its removal per result, and the dispatching coordinator has the run's
// record cached.
//
// The result is handled by its run's shard as a stored result is: applied,
// the record written (compare-and-set), what the run owes next published and
// its PubAcks awaited; only then is the request answered, with an empty
// message. The worker acknowledges its command after that answer, so the
// command, unacknowledged until then, is the durable input:
//
//   - coordinator killed before the record write, or between the write and
//     the answer: the worker's request times out and the worker publishes
//     the result to the results stream, marked protocol.HeaderResent; a
//     coordinator applies it (or finds it applied: then, being a resend, it
//     re-publishes what the record owes, de-duplicated by message id);
//   - answer lost: the same;
//   - worker killed after sending the result, before acknowledging its
//     command: the command is redelivered after the worker's AckWait and
//     run again (at least once, as for a worker killed after a stored
//     result); its second result changes nothing.
//
// A request this coordinator cannot take now (over Config.MaxRequests result
// requests in flight, a store call that failed) is answered at once with
// protocol.HeaderResultError: the worker publishes the result to the stream,
// which absorbs the overload. Nothing is queued without bound.

// errResultsOverloaded answers a result request over Config.MaxRequests.
var errResultsOverloaded = errors.New("coordinator: too many result requests in flight: publish the result to the results stream")

// errResultHandedBack answers a result request whose handling failed (the
// error itself is logged by the shard).
var errResultHandedBack = errors.New("coordinator: the result could not be applied now: publish it to the results stream")

// onResultRequest takes a result request: it decodes it and routes it to
// its run's shard, or answers at once.
func (c *Coordinator) onResultRequest(req *nats.Msg) {
	select {
	case c.resSlots <- struct{}{}:
	default:
		c.warn("result requests overloaded", "result request refused: too many in flight; the worker publishes it to the results stream",
			"max_requests", cap(c.resSlots))
		c.answerResultErr(req, errResultsOverloaded)
		return
	}
	r := new(protocol.TaskResult)
	err := wirecodec.Decode(req.Data, r, c.cfg.MaxPayload)
	rm := &requestMsg{req: req, subject: c.names.ResultSubject(r.RunID), c: c, slots: c.resSlots, result: true}
	// Delivered once: a first-step result of a run with no record yet is
	// handed back once (missing, step.go), and then comes from the stream.
	j := job{msg: rm, delivered: 1, redelivered: req.Header.Get(protocol.HeaderResent) != ""}
	if err != nil {
		// Dead-lettered with its reason; the worker acknowledges its
		// command (the result was taken), as for a stored result.
		rm.subject = c.names.ResultSubject("_")
		c.rejectEarly("result", j, err)
		return
	}
	j.res, j.runID = r, r.RunID
	c.route(j)
}

// answerResult answers a result request: empty when its result was
// handled (applied, found applied or dead-lettered), else with
// protocol.HeaderResultError.
func (c *Coordinator) answerResult(req *nats.Msg, failed bool) {
	if failed {
		c.answerResultErr(req, errResultHandedBack)
		return
	}
	if req.Reply != "" {
		_ = c.nc.Publish(req.Reply, nil)
	}
}

func (c *Coordinator) answerResultErr(req *nats.Msg, err error) {
	if req.Reply == "" {
		return
	}
	_ = c.nc.PublishMsg(&nats.Msg{Subject: req.Reply, Header: nats.Header{protocol.HeaderResultError: {err.Error()}}})
}
