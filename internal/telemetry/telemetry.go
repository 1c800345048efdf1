// Package telemetry holds the store's OpenTelemetry metric instruments. The
// store records through them unconditionally; with no MeterProvider they
// are the API's no-op instruments, which cost an interface call each.
package telemetry

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Scope is the instrumentation scope the instruments are created under.
const Scope = "github.com/go-eventstore/eventstore"

// Metrics is the store's set of instruments. Its methods are safe for
// concurrent use, and a nil *Metrics records nothing.
type Metrics struct {
	appends    metric.Int64Counter
	events     metric.Int64Counter
	bytes      metric.Int64Counter
	batchSize  metric.Int64Histogram
	syncTime   metric.Float64Histogram
	appendTime metric.Float64Histogram
	lag        metric.Int64Histogram
	reg        metric.Registration // the queue depth callback's
}

// New creates the instruments from mp (no-op ones when mp is nil).
// queueDepth is called at each collection for the depth of the writer's
// queue.
func New(mp metric.MeterProvider, queueDepth func() int64) (*Metrics, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter(Scope)
	var x Metrics
	var errs [9]error
	x.appends, errs[0] = m.Int64Counter("eventstore.appends",
		metric.WithUnit("{append}"), metric.WithDescription("Appends committed (duplicates of earlier appends included)."))
	x.events, errs[1] = m.Int64Counter("eventstore.events.written",
		metric.WithUnit("{event}"), metric.WithDescription("Events written to the log."))
	x.bytes, errs[2] = m.Int64Counter("eventstore.bytes.written",
		metric.WithUnit("By"), metric.WithDescription("Bytes of frames written to the log."))
	x.batchSize, errs[3] = m.Int64Histogram("eventstore.batch.size",
		metric.WithUnit("{append}"), metric.WithDescription("Appends written with one write and one fsync."),
		metric.WithExplicitBucketBoundaries(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096))
	x.syncTime, errs[4] = m.Float64Histogram("eventstore.fsync.duration",
		metric.WithUnit("s"), metric.WithDescription("Time each fdatasync of the log took."),
		metric.WithExplicitBucketBoundaries(latencyBuckets...))
	x.appendTime, errs[5] = m.Float64Histogram("eventstore.append.duration",
		metric.WithUnit("s"), metric.WithDescription("Time from Append's call to its return, for appends the writer took."),
		metric.WithExplicitBucketBoundaries(latencyBuckets...))
	x.lag, errs[6] = m.Int64Histogram("eventstore.subscription.lag",
		metric.WithUnit("{event}"), metric.WithDescription("Events a live subscription had yet to read each time it set out to catch up."),
		metric.WithExplicitBucketBoundaries(0, 1, 10, 100, 1000, 10000, 100000, 1000000))
	depth, err := m.Int64ObservableGauge("eventstore.queue.depth",
		metric.WithUnit("{request}"), metric.WithDescription("Appends waiting for the writer."))
	errs[7] = err
	if err == nil {
		x.reg, errs[8] = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
			o.ObserveInt64(depth, queueDepth())
			return nil
		}, depth)
	}
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	return &x, nil
}

// latencyBuckets run from 50 µs to 10 s.
var latencyBuckets = []float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5, 10}

// Close unregisters the queue depth callback.
func (m *Metrics) Close() error {
	if m == nil || m.reg == nil {
		return nil
	}
	return m.reg.Unregister()
}

// Batch records a batch written: its appends, events and bytes.
func (m *Metrics) Batch(appends, events, bytes int) {
	if m == nil {
		return
	}
	ctx := context.Background()
	m.batchSize.Record(ctx, int64(appends))
	m.events.Add(ctx, int64(events))
	m.bytes.Add(ctx, int64(bytes))
}

// Committed records appends answered with success.
func (m *Metrics) Committed(n int) {
	if m == nil {
		return
	}
	if n > 0 {
		m.appends.Add(context.Background(), int64(n))
	}
}

// Synced records an fsync's duration.
func (m *Metrics) Synced(d time.Duration) {
	if m != nil {
		m.syncTime.Record(context.Background(), d.Seconds())
	}
}

// Appended records an Append's duration.
func (m *Metrics) Appended(d time.Duration) {
	if m != nil {
		m.appendTime.Record(context.Background(), d.Seconds())
	}
}

// Lag records how far behind the head a live subscription was.
func (m *Metrics) Lag(events uint64) {
	if m != nil {
		m.lag.Record(context.Background(), int64(events))
	}
}
