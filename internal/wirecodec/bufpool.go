package wirecodec

import "sync"

// bufs holds the buffers messages are encoded into before they are
// published. nats.Conn.PublishMsg copies a message's data into the
// connection's write buffer, so a buffer that nothing keeps after the
// publish (an event, a record update, a chain's next command sent as a
// store) is reused at once instead of allocated per message.
var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// GetBuf returns an empty buffer from the pool; encode into (*bp)[:0].
func GetBuf() *[]byte { return bufs.Get().(*[]byte) }

// PutBuf returns bp to the pool holding data, what was encoded into it
// (its backing array, grown if the encoder needed more), once nothing
// reads data any more; a buffer grown past 64 KiB is left to the collector.
func PutBuf(bp *[]byte, data []byte) {
	if cap(data) <= 64<<10 {
		*bp = data[:0]
		bufs.Put(bp)
	}
}
