package syncsetup

import (
	"testing"
	"time"

	"github.com/crmsync/crmsync/internal/config"
	"github.com/crmsync/crmsync/internal/source/closecrm"
)

// TestEngineOptions: the tuning settings reach the engine as it counts them (the memory
// budget in bytes); left out, they stay zero, the engine's defaults.
func TestEngineOptions(t *testing.T) {
	for _, tt := range []struct {
		name                         string
		cfg                          config.Config
		batch, concurrency, budgetMB int
	}{
		{"defaults", config.Config{}, 0, 0, 0},
		{"set", config.Config{BatchSize: 500, Concurrency: 2, MemoryBudgetMB: 32}, 500, 2, 32},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := EngineOptions(tt.cfg, closecrm.Descriptor, time.Time{}, nil)
			if o.BatchSize != tt.batch || o.Concurrency != tt.concurrency || o.MemoryBudget != tt.budgetMB<<20 {
				t.Errorf("options: batch %d, concurrency %d, budget %d bytes; want %d, %d, %d MiB",
					o.BatchSize, o.Concurrency, o.MemoryBudget, tt.batch, tt.concurrency, tt.budgetMB)
			}
		})
	}
}
