package fault

import "github.com/nats-io/nats.go/jetstream"

func jetstreamOrdered(filter string) jetstream.OrderedConsumerConfig {
	return jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}}
}
