//go:build !unix

package embedded

import "os"

// tryLock does not lock where flock is unavailable: two servers on one
// data directory are not detected there.
func tryLock(*os.File) (held bool, err error) { return false, nil }

func unlock(*os.File) error { return nil }
