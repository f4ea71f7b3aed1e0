//go:build !unix

package bench

// The bench measures CPU time and peak RSS on unix only: without getrusage there is no portable
// source for either. runtime/metrics' /cpu/classes figures are estimates derived from
// GOMAXPROCS and wall time, not comparable with the kernel's accounting, and its memory figures
// are current, not peak, and cover only Go-managed memory. Both report 0 here.

// cpuSeconds reports 0: CPU time is not measured on this platform.
func cpuSeconds() float64 { return 0 }

// peakRSSMB reports 0: peak RSS is not measured on this platform.
func peakRSSMB() float64 { return 0 }
