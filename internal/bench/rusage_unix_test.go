//go:build unix

package bench

import (
	"runtime"
	"testing"
	"time"
)

// TestPeakRSSMB touches a 64 MiB buffer and checks the reported peak covers it without being
// off by the KiB/bytes factor between platforms' ru_maxrss.
func TestPeakRSSMB(t *testing.T) {
	if runtime.GOOS == "solaris" || runtime.GOOS == "illumos" {
		t.Skip("ru_maxrss is not reported here")
	}
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	got := peakRSSMB()
	runtime.KeepAlive(buf)
	if got < 64 || got > 64<<10 {
		t.Errorf("peakRSSMB() = %.1f after touching 64 MiB, want between 64 and 65536", got)
	}
}

// TestCPUSecondsAdvances spins for up to 5 s of wall time and wants 50 ms of it counted as CPU.
func TestCPUSecondsAdvances(t *testing.T) {
	start, deadline := cpuSeconds(), time.Now().Add(5*time.Second)
	x := 1
	for cpuSeconds()-start < 0.05 && time.Now().Before(deadline) {
		for i := range 1_000_000 {
			x ^= x<<1 + i
		}
	}
	if used := cpuSeconds() - start; used < 0.05 {
		t.Errorf("cpuSeconds() advanced %.3f s during a 5 s busy loop (%d)", used, x)
	}
}
