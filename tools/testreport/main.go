// Command testreport reads `go test -json` on standard input and writes
// what a person reads of a test run: each package's result line, the whole
// output of every test that failed (and of a package that failed outside
// its tests), then the slowest tests with their durations and the run's
// counts, ending with the plain line "N passed, N failed, N skipped". It
// exits 1 when any test or package failed, 0 otherwise; scripts/test.sh
// also keeps go test's own exit status (pipefail).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64 // seconds
	Output  string
}

// slowest is how many of the slowest tests the report lists.
const slowest = 10

type result struct {
	name    string // package/Test
	elapsed float64
}

type report struct {
	outputs                 map[string]*strings.Builder // by package/Test; package alone for its own output
	passed, failed, skipped int
	results                 []result
	failedPackage           bool
}

func main() {
	r := &report{outputs: map[string]*strings.Builder{}}
	if err := r.read(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(2)
	}
	r.summary(os.Stdout)
	if r.failed > 0 || r.failedPackage {
		os.Exit(1)
	}
}

// read consumes the events, printing package results and failed tests'
// output as they end. A line that is not JSON (a build error) is printed.
func (r *report) read(in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			fmt.Fprintln(out, sc.Text())
			continue
		}
		r.handle(e, out)
	}
	return sc.Err()
}

func (r *report) handle(e event, out io.Writer) {
	key := e.Package
	if e.Test != "" {
		key += "/" + e.Test
	}
	switch e.Action {
	case "output", "build-output":
		b := r.outputs[key]
		if b == nil {
			b = &strings.Builder{}
			r.outputs[key] = b
		}
		b.WriteString(e.Output)
	case "pass", "fail", "skip":
		r.end(e, key, out)
	}
}

// end records a test's or a package's result.
func (r *report) end(e event, key string, out io.Writer) {
	text := ""
	if b := r.outputs[key]; b != nil {
		text = b.String()
	}
	delete(r.outputs, key)
	if e.Test == "" { // the package
		if e.Action == "fail" {
			r.failedPackage = true
			fmt.Fprint(out, text) // its own output: TestMain's verdicts, a panic, a build error
		}
		fmt.Fprintf(out, "%-4s %s %.1fs\n", strings.ToUpper(e.Action), e.Package, e.Elapsed)
		return
	}
	switch e.Action {
	case "pass":
		r.passed++
	case "skip":
		r.skipped++
	case "fail":
		r.failed++
		fmt.Fprint(out, text)
	}
	if !strings.Contains(e.Test, "/") {
		r.results = append(r.results, result{name: key, elapsed: e.Elapsed})
	}
}

func (r *report) summary(out io.Writer) {
	sort.Slice(r.results, func(i, j int) bool { return r.results[i].elapsed > r.results[j].elapsed })
	n := min(slowest, len(r.results))
	fmt.Fprintf(out, "\nslowest %d tests:\n", n)
	for _, res := range r.results[:n] {
		fmt.Fprintf(out, "  %7.1fs  %s\n", res.elapsed, res.name)
	}
	fmt.Fprintf(out, "%d passed, %d failed, %d skipped\n", r.passed, r.failed, r.skipped)
}
