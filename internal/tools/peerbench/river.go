package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// noopArgs is the job River works: nothing.
type noopArgs struct {
	N int `json:"n"`
}

func (noopArgs) Kind() string { return "noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
}

func (noopWorker) Work(context.Context, *river.Job[noopArgs]) error { return nil }

// riverPeer is River on a PostgreSQL server of its own.
type riverPeer struct {
	server     *exec.Cmd
	runAs      string
	data       string
	durability string
	maxWorkers int
	pool       *pgxpool.Pool
	workers    *river.Workers
	inserter   *river.Client[pgx.Tx]
	version    string
}

func startRiver(ctx context.Context, dir string, o options) (*riverPeer, error) {
	p := &riverPeer{data: filepath.Join(dir, "pg"), durability: o.durability, maxWorkers: o.riverMax}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: run it as the postgres user Debian's package creates.
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, errors.New("PostgreSQL does not run as root and there is no postgres user: run peerbench as another user")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chmod(dir, 0o755); err != nil {
			return nil, err
		}
		if err := os.Mkdir(p.data, 0o700); err != nil {
			return nil, err
		}
		if err := os.Chown(p.data, uid, gid); err != nil {
			return nil, err
		}
		p.runAs = "postgres"
	}
	initdb := command(p.runAs, "initdb", "-D", p.data, "-U", "postgres", "--auth", "trust", "-E", "UTF8", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb (PostgreSQL's binaries must be on PATH): %w: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{"-D", p.data, "-p", strconv.Itoa(port), "-k", p.data,
		"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200", "-c", "shared_buffers=512MB"}
	if o.durability == "os" {
		// Commits are still written to the OS before they are answered; a killed server loses none.
		args = append(args, "-c", "fsync=off")
	}
	p.server = command(p.runAs, "postgres", args...)
	p.server.Stdout, p.server.Stderr = nil, nil
	if err := p.server.Start(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	if err := waitListening(port, 30*time.Second); err != nil {
		p.close()
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port))
	if err != nil {
		p.close()
		return nil, err
	}
	cfg.MaxConns = int32(o.pgConns)
	if p.pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		p.close()
		return nil, err
	}
	// The port opens before the server accepts queries ("the database system is starting up").
	for deadline := time.Now().Add(30 * time.Second); ; {
		err := p.pool.QueryRow(ctx, "SHOW server_version").Scan(&p.version)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			p.close()
			return nil, fmt.Errorf("postgres did not answer within 30 s: %w", err)
		}
		time.Sleep(50 * time.Millisecond) // polling the server; bounded by the deadline
	}
	driver := riverpgxv5.New(p.pool)
	migrator, err := rivermigrate.New(driver, nil)
	if err != nil {
		p.close()
		return nil, err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		p.close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	p.workers = river.NewWorkers()
	river.AddWorker(p.workers, noopWorker{})
	if p.inserter, err = river.NewClient(driver, &river.Config{Workers: p.workers, Logger: quiet()}); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func (p *riverPeer) describe() string {
	fsync := "fsync on each commit (PostgreSQL's default)"
	if p.durability == "os" {
		fsync = "fsync off (commits written to the OS, not flushed)"
	}
	return fmt.Sprintf("River v0.51.2 (pgx v5) on PostgreSQL %s, %s; MaxWorkers %d, %d connections; River's own benchmark's fetch settings",
		p.version, fsync, p.maxWorkers, p.pool.Config().MaxConns)
}

func (p *riverPeer) reset(ctx context.Context) error {
	_, err := p.pool.Exec(ctx, "TRUNCATE river_job")
	return err
}

func (p *riverPeer) serverPID() int { return p.server.Process.Pid }

func (p *riverPeer) insert(ctx context.Context, i int) error {
	_, err := p.inserter.Insert(ctx, noopArgs{N: i}, nil)
	return err
}

func (p *riverPeer) insertAll(ctx context.Context, n int) error {
	// River's own benchmark inserts in batches of 5,000 (InsertMany, PostgreSQL's COPY).
	const batch = 5000
	params := make([]river.InsertManyParams, 0, batch)
	for i := range n {
		params = append(params, river.InsertManyParams{Args: noopArgs{N: i}})
		if len(params) == batch || i == n-1 {
			if _, err := p.inserter.InsertMany(ctx, params); err != nil {
				return err
			}
			params = params[:0]
		}
	}
	return nil
}

func (p *riverPeer) work(ctx context.Context, done chan<- struct{}) (func(), error) {
	client, err := river.NewClient(riverpgxv5.New(p.pool), &river.Config{
		// River's own benchmark's settings (cmd/river/riverbench), "much better than the defaults".
		FetchCooldown:     2 * time.Millisecond,
		FetchPollInterval: 20 * time.Millisecond,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: p.maxWorkers}},
		Workers:           p.workers,
		Logger:            quiet(),
	})
	if err != nil {
		return nil, err
	}
	// Counted on the completion event, as River's benchmark does: the job has passed its completer.
	events, cancel := client.SubscribeConfig(&river.SubscribeConfig{
		ChanSize: cap(done),
		Kinds:    []river.EventKind{river.EventKindJobCompleted},
	})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for e := range events {
			if e != nil {
				done <- struct{}{}
			}
		}
	}()
	if err := client.Start(ctx); err != nil {
		cancel()
		return nil, err
	}
	return func() {
		_ = client.Stop(context.Background())
		cancel()
		<-stopped
	}, nil
}

func (p *riverPeer) settled(ctx context.Context) (bool, error) {
	var left int
	err := p.pool.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE state <> 'completed'").Scan(&left)
	return left == 0, err
}

func (p *riverPeer) close() {
	if p.pool != nil {
		p.pool.Close()
	}
	if p.server != nil && p.server.Process != nil {
		_ = command(p.runAs, "pg_ctl", "-D", p.data, "stop", "-m", "immediate").Run()
		_ = p.server.Wait()
	}
}
