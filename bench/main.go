// Command bench runs one workload against this store, the disk's own
// limits and the embedded stores people use instead, and prints one row per
// backend and writer count: durable appends per second and their ratio to
// the group-commit limit measured in the same run, append latency, reads,
// reopen time, peak memory and bytes on disk. It can also write the table
// to a Markdown file and draw appends per second against writers as an SVG
// chart.
//
//	go run . -events 100000 -writers 1,8,64,256 -md results.md -svg chart.svg
//
// Each backend and writer count runs in a child process of its own, so
// peak RSS is that run's alone. PostgreSQL runs when EVENTSTORE_BENCH_PG
// (a connection string) reaches a server, and is skipped otherwise.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	events := flag.Int("events", 100_000, "events to append per run")
	writerList := flag.String("writers", "1,8,64,256", "writer counts, comma-separated")
	backendList := flag.String("backends", "all", "backends to run, comma-separated, or all")
	base := flag.String("dir", "", "directory for the stores (default: a temporary one)")
	md := flag.String("md", "", "also write the report, in Markdown, to this file")
	svg := flag.String("svg", "", "also draw appends/s against writers to this SVG file")
	maxTime := flag.Duration("max-time", 20*time.Second, "stop a run's appends after this long, and measure the rest on what was appended")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of each backend and writer count's run to this path, with -<backend>-<W>.pprof appended")
	crash := flag.Bool("crash", false, "also time a reopen after a crash: the appends run again in a process killed with SIGKILL once they are acknowledged, and a new process opens the store and checks that it holds them all")
	child := flag.String("child", "", "internal: run one backend in this process")
	crashStep := flag.String("crash-step", "", "internal, with -child: append then die, or reopen")
	flag.Parse()

	if *child != "" && *crashStep != "" {
		w, _ := strconv.Atoi(*writerList)
		var err error
		switch *crashStep {
		case "append":
			err = crashAppend(*child, w, *events, *maxTime, *base, os.Stdout)
		case "reopen":
			var res result
			if res, err = crashReopen(*child, w, *events, *base); err == nil {
				err = json.NewEncoder(os.Stdout).Encode(res)
			}
		default:
			err = fmt.Errorf("unknown crash step %q", *crashStep)
		}
		if err != nil {
			log.Fatalf("%s, %d writers, crash %s: %v", *child, w, *crashStep, err)
		}
		return
	}

	if *child != "" {
		w, _ := strconv.Atoi(*writerList)
		var prof *os.File
		if *cpuProfile != "" {
			var err error
			if prof, err = os.Create(*cpuProfile); err != nil {
				log.Fatal(err)
			}
			if err := pprof.StartCPUProfile(prof); err != nil {
				log.Fatal(err)
			}
		}
		res, err := run(*child, w, *events, *maxTime, *base)
		if prof != nil {
			pprof.StopCPUProfile()
			if err := prof.Close(); err != nil {
				log.Fatal(err)
			}
		}
		if err != nil {
			log.Fatalf("%s, %d writers: %v", *child, w, err)
		}
		if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
			log.Fatal(err)
		}
		return
	}

	var writers []int
	for _, f := range strings.Split(*writerList, ",") {
		w, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || w < 1 {
			log.Fatalf("bad writer count %q", f)
		}
		writers = append(writers, w)
	}
	names := backendNames()
	if *backendList != "all" {
		names = nil
		for _, n := range strings.Split(*backendList, ",") {
			if _, ok := specs[n]; !ok {
				log.Fatalf("no backend %q; have %s", n, strings.Join(backendNames(), ", "))
			}
			names = append(names, n)
		}
	}
	if *base == "" {
		d, err := os.MkdirTemp("", "eventstore-bench")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(d)
		*base = d
	}

	started := time.Now()
	var results []result
	for _, name := range names {
		sp := specs[name]
		if sp.skip != nil {
			if why := sp.skip(); why != "" {
				log.Printf("%s: skipped: %s", name, why)
				results = append(results, result{Backend: name, Skipped: why})
				continue
			}
		}
		for _, w := range writers {
			res, err := runChild(name, w, *events, *maxTime, *base, *cpuProfile)
			if err != nil {
				log.Fatalf("%s, %d writers: %v", name, w, err)
			}
			if *crash {
				if res.CrashReopen, res.CrashEvents, err = crashChild(name, w, *events, *maxTime, *base); err != nil {
					log.Fatalf("%s, %d writers, crash: %v", name, w, err)
				}
			}
			log.Printf("%-24s W=%-3d %10.0f appends/s  p99 %v", name, w, res.AppendsPerSec, time.Duration(res.P99))
			results = append(results, res)
		}
	}
	header := fmt.Sprintf("Up to %d events (appends stop after %v) of %d bytes over %d streams, %s, %d CPUs, %s; %s in %v.",
		*events, *maxTime, eventSize, numStreams, runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU(), cpuModel(),
		time.Now().UTC().Format("2006-01-02"), time.Since(started).Round(time.Second))
	report := markdown(header, results)
	fmt.Print(report)
	if *md != "" {
		if err := os.WriteFile(*md, []byte(report), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	if *svg != "" {
		if err := chart(results, *svg); err != nil {
			log.Fatal(err)
		}
	}
}

// crashChild measures a reopen after a crash in two child processes, in a
// fresh directory it removes after: one runs the appends and kills itself
// once they are acknowledged; the next times the open and checks that the
// store holds every acknowledged event. It returns the reopen's time and
// how many events the store held.
func crashChild(name string, writers, events int, maxTime time.Duration, base string) (reopen int64, held int, err error) {
	dir, err := os.MkdirTemp(base, name+"-crash-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	step := func(step string, events int) (result, *os.ProcessState, error, error) {
		return runProcess("-child", name, "-crash-step", step, "-writers", strconv.Itoa(writers),
			"-events", strconv.Itoa(events), "-max-time", maxTime.String(), "-dir", dir)
	}
	appended, ps, err, jerr := step("append", events)
	if ps == nil || ps.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		return 0, 0, fmt.Errorf("the appending process was not killed: %v", err)
	}
	if jerr != nil {
		return 0, 0, jerr
	}
	if appended.Events == 0 {
		return 0, 0, fmt.Errorf("the appending process acknowledged no append")
	}
	reopened, _, err, jerr := step("reopen", appended.Events)
	if err != nil {
		return 0, 0, err
	}
	if jerr != nil {
		return 0, 0, jerr
	}
	return reopened.CrashReopen, reopened.Events, nil
}

// runChild runs one backend and writer count in a child process, in a fresh
// directory it removes after, and adds the child's peak RSS to the result.
func runChild(name string, writers, events int, maxTime time.Duration, base, cpuProfile string) (result, error) {
	dir, err := os.MkdirTemp(base, name+"-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	args := []string{"-child", name, "-writers", strconv.Itoa(writers),
		"-events", strconv.Itoa(events), "-max-time", maxTime.String(), "-dir", dir}
	if cpuProfile != "" {
		args = append(args, "-cpuprofile", fmt.Sprintf("%s-%s-%d.pprof", cpuProfile, name, writers))
	}
	res, ps, err, jerr := runProcess(args...)
	if err != nil {
		return result{}, err
	}
	if jerr != nil {
		return result{}, jerr
	}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		res.PeakRSS = ru.Maxrss * 1024 // KiB on Linux
	}
	return res, nil
}

// runProcess runs this command again with args, as a child, and decodes
// the result it writes last to stdout. runErr is how the child ended;
// outErr, why its output held no result.
func runProcess(args ...string) (res result, ps *os.ProcessState, runErr, outErr error) {
	cmd := exec.Command(os.Args[0], args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	runErr = cmd.Run()
	lines := bytes.Split(bytes.TrimSpace(out.Bytes()), []byte("\n"))
	if err := json.Unmarshal(lines[len(lines)-1], &res); err != nil {
		outErr = fmt.Errorf("child output %q: %w", out.String(), err)
	}
	return res, cmd.ProcessState, runErr, outErr
}

// cpuModel names the processor, for the report.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
