package fleetworker

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/crmsync/crmsync/internal/engine"
	"github.com/crmsync/crmsync/internal/fleetqueue"
)

// metrics are one worker's, served on --listen. Labels carry account names and results,
// never a secret.
type metrics struct {
	reg         *prometheus.Registry
	syncs       *prometheus.CounterVec
	rows        *prometheus.CounterVec
	requests    *prometheus.CounterVec
	rateLimited *prometheus.CounterVec
	retries     *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	lastSuccess *prometheus.GaugeVec
	running     prometheus.Gauge
}

func newMetrics(pool *pgxpool.Pool) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crmsync_syncs_total",
			Help: "Syncs run by this worker, by account and result (ok, failed, auth, settings, stopped, timeout, locked)."}, []string{"account", "result"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crmsync_rows_written_total",
			Help: "Rows written to destinations, by account."}, []string{"account"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crmsync_api_requests_total",
			Help: "API requests sent (every attempt), by account."}, []string{"account"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crmsync_api_rate_limited_total",
			Help: "API answers that were 429 (rate limited), by account."}, []string{"account"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crmsync_api_retries_total",
			Help: "API requests retried, by account."}, []string{"account"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "crmsync_sync_duration_seconds",
			Help:    "Wall time of syncs, by result.",
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600}}, []string{"result"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "crmsync_last_success_timestamp_seconds",
			Help: "Unix time at which the account's last successful sync (on this worker) ended."}, []string{"account"}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{Name: "crmsync_syncs_running",
			Help: "Syncs running on this worker now."}),
	}
	m.reg.MustRegister(m.syncs, m.rows, m.requests, m.rateLimited, m.retries, m.duration, m.lastSuccess, m.running,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), &jobsCollector{pool: pool})
	return m
}

// observe counts one finished sync.
func (m *metrics) observe(account, result string, rep engine.Report, took time.Duration, end time.Time) {
	m.syncs.WithLabelValues(account, result).Inc()
	m.rows.WithLabelValues(account).Add(float64(rep.Rows()))
	m.requests.WithLabelValues(account).Add(float64(rep.Requests.Requests))
	m.rateLimited.WithLabelValues(account).Add(float64(rep.Requests.RateLimited))
	m.retries.WithLabelValues(account).Add(float64(rep.Requests.Retries))
	m.duration.WithLabelValues(result).Observe(took.Seconds())
	if result == fleetqueue.ResultOK {
		m.lastSuccess.WithLabelValues(account).Set(float64(end.Unix()))
	}
}

// jobsCollector reports the fleet's sync jobs by state, read from the queue at each scrape:
// every worker reports the same fleet-wide numbers.
type jobsCollector struct{ pool *pgxpool.Pool }

var jobsDesc = prometheus.NewDesc("crmsync_jobs", "Sync jobs in the queue (whole fleet), by state: available (queued), running, scheduled, retryable.", []string{"state"}, nil)

func (c *jobsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- jobsDesc }

func (c *jobsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts := map[string]float64{"available": 0, "running": 0, "scheduled": 0, "retryable": 0}
	rows, err := c.pool.Query(ctx, `SELECT state::text, count(*) FROM river_job WHERE kind = $1 AND state IN ('available', 'running', 'scheduled', 'retryable') GROUP BY state`, fleetqueue.Kind)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(jobsDesc, err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var state string
		var n float64
		if err := rows.Scan(&state, &n); err != nil {
			ch <- prometheus.NewInvalidMetric(jobsDesc, err)
			return
		}
		counts[state] = n
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, n, state)
	}
}

// serve serves /metrics and /healthz on addr until ctx is done. healthy says whether the
// worker is up (its queue answers).
func serve(ctx context.Context, addr string, m *metrics, healthy func(context.Context) error, log *slog.Logger) (net.Addr, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := healthy(ctx); err != nil {
			http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	return ln.Addr(), nil
}
