package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// asynqPeer is asynq on a redis-server of its own.
type asynqPeer struct {
	server      *exec.Cmd
	durability  string
	concurrency int
	opt         asynq.RedisClientOpt
	rdb         *redis.Client
	client      *asynq.Client
	inspector   *asynq.Inspector
	payload     []byte
}

func startAsynq(ctx context.Context, dir string, o options) (*asynqPeer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir, "--logfile", ""}
	if o.durability == "os" {
		// Every write handed to the OS before the reply; a killed server loses nothing it acknowledged.
		args = append(args, "--save", "", "--appendonly", "yes", "--appendfsync", "no")
	}
	server := exec.Command("redis-server", args...)
	server.Stdout, server.Stderr = nil, os.Stderr
	if err := server.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server (apt-get install redis-server): %w", err)
	}
	if err := waitListening(port, 10*time.Second); err != nil {
		_ = server.Process.Kill()
		return nil, err
	}
	p := &asynqPeer{
		server:      server,
		durability:  o.durability,
		concurrency: o.asynqConc,
		opt:         asynq.RedisClientOpt{Addr: fmt.Sprintf("127.0.0.1:%d", port), PoolSize: o.inFlight},
		payload:     []byte(`{"n":1}`),
	}
	p.rdb = redis.NewClient(&redis.Options{Addr: p.opt.Addr})
	p.client = asynq.NewClient(p.opt)
	p.inspector = asynq.NewInspector(p.opt)
	return p, p.rdb.Ping(ctx).Err()
}

func (p *asynqPeer) describe() string {
	v, _ := p.rdb.Info(context.Background(), "server").Result()
	version := "redis"
	for _, line := range strings.Split(v, "\r\n") {
		if after, ok := strings.CutPrefix(line, "redis_version:"); ok {
			version = "Redis " + after
		}
	}
	persistence := "snapshots only (Redis's default)"
	if p.durability == "os" {
		persistence = "appendonly yes, appendfsync no"
	}
	return fmt.Sprintf("asynq v0.26.0 on %s, %s; Concurrency %d", version, persistence, p.concurrency)
}

func (p *asynqPeer) reset(ctx context.Context) error {
	if err := p.rdb.FlushAll(ctx).Err(); err != nil {
		return err
	}
	// The client remembers the queues it has registered: a new one registers "default" again.
	_ = p.client.Close()
	p.client = asynq.NewClient(p.opt)
	return nil
}

func (p *asynqPeer) serverPID() int { return p.server.Process.Pid }

func (p *asynqPeer) insert(ctx context.Context, _ int) error {
	_, err := p.client.EnqueueContext(ctx, asynq.NewTask("noop", p.payload))
	return err
}

func (p *asynqPeer) insertAll(ctx context.Context, n int) error {
	// asynq has no batch insert; its own benchmark enqueues one by one, here with calls in flight.
	return insertConcurrently(ctx, p, n, 100)
}

func (p *asynqPeer) work(_ context.Context, done chan<- struct{}) (func(), error) {
	srv := asynq.NewServer(p.opt, asynq.Config{Concurrency: p.concurrency, LogLevel: asynq.ErrorLevel})
	err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
		done <- struct{}{}
		return nil
	}))
	return srv.Shutdown, err
}

func (p *asynqPeer) settled(context.Context) (bool, error) {
	q, err := p.inspector.GetQueueInfo("default")
	if err != nil {
		return false, err
	}
	return q.Pending == 0 && q.Active == 0, nil
}

func (p *asynqPeer) close() {
	_ = p.client.Close()
	_ = p.inspector.Close()
	_ = p.rdb.Close()
	_ = p.server.Process.Kill()
	_ = p.server.Wait()
}
