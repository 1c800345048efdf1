package main

import (
	"fmt"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// markdown renders the results as a table, ratios taken against the limits
// measured in the same run with the same writer count, followed by each
// backend's durability settings.
func markdown(header string, results []result) string {
	limit := map[int]float64{}
	perRecord := map[int]float64{}
	for _, r := range results {
		switch r.Backend {
		case "limit":
			limit[r.Writers] = r.AppendsPerSec
		case "limit-fsync-per-record":
			perRecord[r.Writers] = r.AppendsPerSec
		}
	}
	ratio := func(v float64, of map[int]float64, w int) string {
		if of[w] == 0 {
			return "–"
		}
		return fmt.Sprintf("%.2f", v/of[w])
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", header)
	b.WriteString("| Backend | W | events | appends/s | × limit | × fsync/record | p50 | p99 | read-all warm, events/s (median) | read-all cold | read one stream | reopen | reopen after a crash | peak RSS | bytes/event on disk |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		if r.Skipped != "" {
			fmt.Fprintf(&b, "| %s | – | skipped: %s | | | | | | | | | | | | |\n", r.Backend, r.Skipped)
			continue
		}
		crashReopen := "–"
		if r.CrashReopen > 0 {
			crashReopen = fmt.Sprintf("%s (%s events)", dur(r.CrashReopen), count(float64(r.CrashEvents)))
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s (%s) | %s | %s (%d events) | %s | %s | %.0f MiB | %.0f |\n",
			r.Backend, r.Writers, count(float64(r.Events)), count(r.AppendsPerSec), ratio(r.AppendsPerSec, limit, r.Writers),
			ratio(r.AppendsPerSec, perRecord, r.Writers), dur(r.P50), dur(r.P99),
			count(r.ReadAllWarm), count(r.ReadAllWarmMedian), count(r.ReadAllCold), dur(r.ReadStream), r.StreamEvents, dur(r.Reopen), crashReopen,
			float64(r.PeakRSS)/(1<<20), r.DiskBytesPerEvent)
	}
	fmt.Fprintf(&b, "\nRead-all warm is the fastest of %d passes over everything, right after the appends, with the median pass in brackets; cold is one pass after the files are evicted from the page cache and the store reopened. Read one stream is the median over 20 streams. Reopen after a crash, measured with -crash, is a second run of the appends in a process killed with SIGKILL once they are acknowledged, then a timed open in a new process, which must find every acknowledged event.\n", warmPasses)
	b.WriteString("\nSettings under which each backend acknowledges an append:\n\n")
	for _, name := range backendNames() {
		sp := specs[name]
		durable := "durable"
		if !sp.durable {
			durable = "**not durable**"
		}
		fmt.Fprintf(&b, "- `%s` (%s): %s\n", name, durable, sp.settings)
	}
	return b.String()
}

// count formats a rate with thousands separators.
func count(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func dur(ns int64) string {
	d := time.Duration(ns)
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}

// chart draws durable appends per second against writers, one line per
// backend, both axes logarithmic.
func chart(results []result, path string) error {
	p := plot.New()
	p.Title.Text = "Appends per second, each acknowledged when durable unless marked"
	p.X.Label.Text = "concurrent writers"
	p.Y.Label.Text = "appends/s"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	p.Legend.Top, p.Legend.Left = true, true
	var lines []any
	for _, name := range backendNames() {
		var xys plotter.XYs
		for _, r := range results {
			if r.Backend == name && r.Skipped == "" {
				xys = append(xys, plotter.XY{X: float64(r.Writers), Y: r.AppendsPerSec})
			}
		}
		if len(xys) > 0 {
			label := name
			if !specs[name].durable {
				label += " (not durable)"
			}
			lines = append(lines, label, xys)
		}
	}
	if err := plotutil.AddLinePoints(p, lines...); err != nil {
		return err
	}
	return p.Save(9*vg.Inch, 6*vg.Inch, path)
}
