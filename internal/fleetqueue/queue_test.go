package fleetqueue

import (
	"testing"
	"time"
)

func TestNextRetryIsCappedByThePeriod(t *testing.T) {
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		attempt int
		period  time.Duration
		want    time.Duration
	}{
		{1, time.Hour, time.Second},
		{3, time.Hour, 81 * time.Second},
		{6, time.Hour, 1296 * time.Second},
		{8, time.Hour, time.Hour}, // 4096 s: capped at the period
		{25, 30 * time.Minute, 30 * time.Minute},
		{5, 2 * time.Second, 2 * time.Second},
		{1, 100 * time.Millisecond, time.Second}, // never sooner than a second
	}
	for _, tt := range tests {
		if got := NextRetry(tt.attempt, at, at.Add(time.Minute), tt.period).Sub(at); got != tt.want {
			t.Errorf("attempt %d, period %s: retry after %s, want %s", tt.attempt, tt.period, got, tt.want)
		}
	}
	if got := NextRetry(2, time.Time{}, at, time.Hour); !got.Equal(at.Add(16 * time.Second)) {
		t.Errorf("without an attempt time: %s, want now + 16s", got)
	}
}
