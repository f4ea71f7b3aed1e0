//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"syscall"

	"github.com/crmsync/crmsync/internal/destination"
)

// lockAttempts bounds how often lockFile retries when the lock file is unlinked or replaced
// between its open and its flock; each retry means another sync released the lock meanwhile.
const lockAttempts = 100

// lockFile takes an exclusive flock on path, creating the file, and returns the func that
// releases it and removes the file, so no lock file is left next to the user's database.
//
// Removing the file on release opens a race that the inode check closes: a second process may
// have opened the file before the holder unlinked it and get its flock only afterwards, on an
// inode no path names any more, while a third process creates and locks a new file at path.
// So after the flock, path must still name the inode that is locked; if not, start over.
//
// A process killed while holding the lock leaves the file behind. That is harmless: the kernel
// drops the flock with the process, and the next lockFile locks the leftover file and removes
// it on release.
func lockFile(path string) (func(), error) {
	for range lockAttempts {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, destination.ErrLocked
			}
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		same, err := namesFile(path, f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !same {
			f.Close() // drops the flock on the orphaned inode
			continue
		}
		var once sync.Once
		return func() {
			// Once: a second call must not unlink a file another sync has since locked.
			once.Do(func() {
				// Unlink while still holding the lock, so whoever locks the old inode next
				// sees that path no longer names it. Errors are ignored: a file left behind
				// only costs an inode and is reused by the next lock.
				os.Remove(path)
				syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			})
		}, nil
	}
	return nil, fmt.Errorf("lock %s: the lock file was replaced %d times while being locked", path, lockAttempts)
}

// namesFile reports whether path still names the open file f.
func namesFile(path string, f *os.File) (bool, error) {
	held, err := f.Stat()
	if err != nil {
		return false, err
	}
	now, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(held, now), nil
}
