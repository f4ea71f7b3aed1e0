//go:build unix

package bench

import (
	"runtime"
	"syscall"
	"time"
)

// cpuSeconds is the user plus system CPU time the process has used so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// peakRSSMB is the process's high-water resident set size in MiB, 0 where the system does not
// report it (Solaris and illumos leave ru_maxrss at 0).
func peakRSSMB() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	kib := float64(ru.Maxrss) // Linux and the BSDs report KiB
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		kib /= 1024 // Apple's kernels report bytes
	}
	return kib / 1024
}
