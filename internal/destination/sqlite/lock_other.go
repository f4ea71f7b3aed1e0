//go:build !unix

package sqlite

// lockFile is a no-op where flock is unavailable; SQLite's own locking still keeps the file
// consistent, but two syncs of one source are not refused up front.
func lockFile(path string) (func(), error) { return func() {}, nil }
