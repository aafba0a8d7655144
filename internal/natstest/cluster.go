package natstest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cano-nats/cano/pkg/embedded"
)

// Cluster is a JetStream cluster of embedded servers on loopback, each with
// its own store under t.TempDir(), fixed client and route ports (so a node
// can be stopped and started again on the same data and ports).
type Cluster struct {
	tb   testing.TB
	cfgs []embedded.Config

	mu    sync.Mutex
	nodes []*embedded.Server // guarded by mu; nil while a node is stopped
}

// StartCluster starts an n-node cluster, waits until JetStream has a meta
// leader, and stops every node in t.Cleanup.
func StartCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	ports := freePorts(tb, 2*n)
	clientPorts, routePorts := ports[:n], ports[n:]
	c := &Cluster{tb: tb, nodes: make([]*embedded.Server, n)}
	for i := 0; i < n; i++ {
		var routes []string
		for j := 0; j < n; j++ {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", routePorts[j]))
			}
		}
		c.cfgs = append(c.cfgs, embedded.Config{StoreDir: tb.TempDir(), Port: clientPorts[i],
			ServerName: fmt.Sprintf("n%d", i),
			Cluster:    &embedded.ClusterConfig{Name: "cano-test", Port: routePorts[i], Routes: routes}})
	}
	tb.Cleanup(func() {
		for i := range c.cfgs {
			c.Stop(i)
		}
	})
	for i := range c.cfgs {
		c.Restart(i)
	}
	c.WaitMetaLeader(30 * time.Second)
	return c
}

func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("natstest: free port: %v", err)
		}
		defer func() { _ = l.Close() }()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// Name is node i's server name ("n0", "n1", …).
func (c *Cluster) Name(i int) string { return c.cfgs[i].ServerName }

// Index returns the node named name, or -1.
func (c *Cluster) Index(name string) int {
	for i, cfg := range c.cfgs {
		if cfg.ServerName == name {
			return i
		}
	}
	return -1
}

// URL is node i's client URL.
func (c *Cluster) URL(i int) string { return fmt.Sprintf("nats://127.0.0.1:%d", c.cfgs[i].Port) }

// URLs is every node's client URL, comma-separated (for -s flags and
// nats.Connect).
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.cfgs))
	for i := range c.cfgs {
		urls[i] = c.URL(i)
	}
	return strings.Join(urls, ",")
}

// Stop shuts node i down (a no-op if it is stopped).
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	s := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	s.Stop()
}

// Restart starts node i (again) on its store, ports and routes.
func (c *Cluster) Restart(i int) {
	c.tb.Helper()
	s, err := embedded.Start(c.cfgs[i])
	if err != nil {
		c.tb.Fatalf("natstest: start node %s: %v", c.cfgs[i].ServerName, err)
	}
	c.mu.Lock()
	c.nodes[i] = s
	c.mu.Unlock()
}

// Connect opens a connection to every node (reconnecting for ever), closed
// in t.Cleanup.
func (c *Cluster) Connect(tb testing.TB) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		tb.Fatalf("natstest: connect: %v", err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("natstest: jetstream: %v", err)
	}
	return nc, js
}

// WaitMetaLeader waits until the JetStream API answers (a meta leader is
// elected).
func (c *Cluster) WaitMetaLeader(timeout time.Duration) {
	c.tb.Helper()
	nc, js := c.Connect(c.tb)
	defer nc.Close()
	WaitFor(c.tb, timeout, "a JetStream meta leader", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := js.AccountInfo(ctx)
		return err == nil
	})
}
