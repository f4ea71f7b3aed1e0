package main

import (
	"runtime/debug"
	"testing"
)

// TestTuneGC: the collector's percent and soft limit are crmsync's unless the environment
// sets them, and the limit scales with the syncs a process runs.
func TestTuneGC(t *testing.T) {
	percent, limit := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(percent); debug.SetMemoryLimit(limit) })
	for _, tc := range []struct {
		name        string
		env         map[string]string
		syncs       int
		wantPercent int
		wantLimit   int64
	}{
		{"defaults", nil, 1, gcPercent, softMemoryLimit},
		{"a worker of four syncs", nil, 4, gcPercent, 4 * softMemoryLimit},
		{"GOGC set", map[string]string{"GOGC": "50"}, 1, 77, softMemoryLimit},
		{"GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "1GiB"}, 2, gcPercent, 123 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// What the environment would have set already, as the runtime reads it at start.
			debug.SetGCPercent(77)
			debug.SetMemoryLimit(123 << 20)
			tuneGC(func(k string) string { return tc.env[k] }, tc.syncs)
			if got := debug.SetGCPercent(77); got != tc.wantPercent {
				t.Errorf("GC percent %d, want %d", got, tc.wantPercent)
			}
			if got := debug.SetMemoryLimit(-1); got != tc.wantLimit {
				t.Errorf("memory limit %d, want %d", got, tc.wantLimit)
			}
		})
	}
}
