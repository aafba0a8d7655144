package embedded

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// lockFile is the name of the lock file a server holds in its StoreDir
// while it runs, so that two servers never share one data directory.
const lockFile = "cano.lock"

// ErrStoreDirInUse is matched (with errors.Is) by the error [Start] returns
// when another server holds StoreDir's lock.
var ErrStoreDirInUse = errors.New("embedded: data directory in use")

// StoreDirInUseError names the data directory another server holds.
type StoreDirInUseError struct {
	// Dir is the data directory, LockFile the lock file in it.
	Dir, LockFile string
	// PID is the process that wrote the lock file, 0 if unknown.
	PID int
}

// Error names the directory and the lock holder.
func (e *StoreDirInUseError) Error() string {
	holder := "another server"
	if e.PID > 0 {
		holder = "another server (pid " + strconv.Itoa(e.PID) + ")"
	}
	return fmt.Sprintf("embedded: data directory %s is in use by %s: its lock file %s is held; "+
		"stop that server first, or give this one its own directory (-data)", e.Dir, holder, e.LockFile)
}

// Is makes errors.Is(err, ErrStoreDirInUse) true.
func (e *StoreDirInUseError) Is(target error) bool { return target == ErrStoreDirInUse }

// dirLock is a held lock on a data directory.
type dirLock struct {
	f    *os.File
	once sync.Once
}

// lockDir creates dir if needed and takes the lock file in it, without
// waiting: a lock another process (or another server in this process)
// holds gives a *StoreDirInUseError. The lock goes with the process, so a
// crashed server leaves nothing to clean up.
func lockDir(dir string) (*dirLock, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded: data directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("embedded: lock file %s: %w", path, err)
	}
	held, err := tryLock(f)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("embedded: lock file %s: %w", path, err)
	}
	if held {
		b, _ := os.ReadFile(path)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		_ = f.Close()
		return nil, &StoreDirInUseError{Dir: dir, LockFile: path, PID: pid}
	}
	// The pid is only for the message above; the lock itself is the flock.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dirLock{f: f}, nil
}

// release gives the lock up. Safe on nil.
func (l *dirLock) release() {
	if l == nil {
		return
	}
	l.once.Do(func() {
		_ = unlock(l.f)
		_ = l.f.Close()
	})
}
