//go:build unix

package sqlite

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/crmsync/crmsync/internal/destination"
)

func lockPath(dbPath, source string) string { return dbPath + ".crmsync-" + source + ".lock" }

func TestLockReleaseRemovesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crmsync.db")
	d := open(t, path, "")
	release, err := d.Lock(t.Context(), "close")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(lockPath(path, "close")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("lock file while held: %v, %v; want mode 0600", st, err)
	}
	release()
	if _, err := os.Stat(lockPath(path, "close")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file after release: %v, want it removed", err)
	}
	release() // a second call must be harmless
}

func TestLockExcludesAndReleases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crmsync.db")
	d := open(t, path, "")
	ctx := t.Context()
	release, err := d.Lock(ctx, "close")
	if err != nil {
		t.Fatal(err)
	}
	if rel, err := d.Lock(ctx, "close"); !errors.Is(err, destination.ErrLocked) {
		if rel != nil {
			rel()
		}
		t.Fatalf("second Lock while the first is held = %v, want ErrLocked", err)
	}
	release()
	again, err := d.Lock(ctx, "close")
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	// A stale release must not unlink the file the new holder has locked.
	release()
	if _, err := os.Stat(lockPath(path, "close")); err != nil {
		t.Errorf("a repeated release removed the new holder's lock file: %v", err)
	}
	if rel, err := d.Lock(ctx, "close"); !errors.Is(err, destination.ErrLocked) {
		if rel != nil {
			rel()
		}
		t.Errorf("Lock while the second holder holds it = %v, want ErrLocked", err)
	}
	again()
}

func TestLockIgnoresStaleFile(t *testing.T) {
	// What a sync killed while holding the lock leaves: the file, but no flock on it.
	path := filepath.Join(t.TempDir(), "crmsync.db")
	d := open(t, path, "")
	if err := os.WriteFile(lockPath(path, "close"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	release, err := d.Lock(t.Context(), "close")
	if err != nil {
		t.Fatalf("Lock over a stale lock file: %v", err)
	}
	release()
	if _, err := os.Stat(lockPath(path, "close")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale lock file after release: %v, want it removed", err)
	}
}

// TestLockMutualExclusionUnderChurn has many claimants lock and release (which unlinks the
// file) as fast as they can. Without the check that the path still names the locked inode, a
// claimant that opened the file just before a release unlinked it holds a lock nobody else can
// see, and two claimants hold "the" lock at once.
func TestLockMutualExclusionUnderChurn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crmsync.db")
	d := open(t, path, "")
	ctx := t.Context()
	var holders, acquired, overlaps atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 2000 {
				release, err := d.Lock(ctx, "close")
				if errors.Is(err, destination.ErrLocked) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if holders.Add(1) > 1 {
					overlaps.Add(1)
				}
				acquired.Add(1)
				runtime.Gosched() // widen the window in which an overlap shows
				holders.Add(-1)
				release()
			}
		})
	}
	wg.Wait()
	if n := overlaps.Load(); n > 0 {
		t.Errorf("the lock was held twice at once %d times", n)
	}
	if acquired.Load() == 0 {
		t.Error("no claimant ever got the lock")
	}
	if _, err := os.Stat(lockPath(path, "close")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file after every release: %v, want it removed", err)
	}
}
