package fleet

import (
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule gives an account's next sync time after t (River's PeriodicSchedule).
type Schedule interface {
	Next(t time.Time) time.Time
}

// interval runs every period at a fixed phase: the same instants whoever computes them and
// whenever the worker started, so a restart or a new leader neither skips nor bunches syncs,
// and `fleet status` can say when the next one is. The phase comes from the account's name,
// which spreads the accounts of one period over it.
type interval struct {
	period, phase time.Duration
}

// Interval is a schedule of every period, phased by the account's name.
func Interval(account string, period time.Duration) Schedule {
	h := fnv.New64a()
	h.Write([]byte(account))
	return interval{period: period, phase: time.Duration(h.Sum64() % uint64(period))}
}

func (s interval) Next(t time.Time) time.Time {
	since := t.Sub(time.Unix(0, 0).Add(s.phase))
	n := since / s.period
	if since < 0 {
		n--
	}
	return time.Unix(0, 0).Add(s.phase + (n+1)*s.period)
}

// ParseCron parses a five-field cron spec ("15 * * * *", "@hourly"), in UTC unless it starts
// with CRON_TZ=Area/City: every machine of a fleet then agrees on the instants.
func ParseCron(spec string) (Schedule, error) {
	s := strings.TrimSpace(spec)
	if !strings.HasPrefix(s, "CRON_TZ=") && !strings.HasPrefix(s, "TZ=") {
		s = "CRON_TZ=UTC " + s
	}
	sched, err := cron.ParseStandard(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a cron schedule (minute hour day-of-month month day-of-week, e.g. \"15 * * * *\"): %v", spec, err)
	}
	return sched, nil
}
