// Command validate checks kesm's Grafana dashboard (deploy/grafana/kesm.json) strictly,
// without a Grafana: Grafana cannot be installed on the test machines, so the dashboard is
// decoded with the Grafana Foundation SDK's Go types, which are generated from Grafana's own
// schemas (dashboard, panel plugins, Prometheus query).
//
//	validate [-docs docs/operations.md] [-rules deploy/prometheus/rules.yaml] [-v] DASHBOARD.json
//
// Exit status: 0 valid, 1 findings (one line each on stderr), 2 usage or unreadable input.
//
// What it checks:
//   - the whole dashboard decodes with dashboard.Dashboard.UnmarshalJSONStrict (unknown field,
//     wrong type or missing required field fails) and passes Validate();
//   - every panel again on its own: dashboard.Panel (options and fieldConfig.defaults.custom by
//     the panel plugin's own types), its fieldConfig as dashboard.FieldConfigSource, and each
//     target as prometheus.Dataquery, all strict, all Validate()d; the panel type must be one
//     the SDK knows (else its options would decode as a free-form map);
//   - the datasource is the `datasource` variable everywhere: every panel and target says
//     {"type": "prometheus", "uid": "${datasource}"}; no other uid anywhere;
//   - the variables: `datasource` (type datasource, query prometheus), `mapping` (query
//     label_values(kesm_pollers, mapping), multi, include all), `instance`;
//   - ids unique, gridPos inside the 24-column grid and not overlapping, rows first;
//   - every target has a refId (unique in its panel) and an expr; every metric an expr reads is
//     in the metric reference table of docs/operations.md (histograms with _bucket, _sum,
//     _count) or is a recording rule of the rules file; metrics with a `mapping` label are
//     selected with mapping=~"$mapping", the others with instance=~"$instance", and process_*
//     series are joined with kesm_build_info (other exporters have process_* too);
//   - only the Grafana variables $mapping, $instance, $__rate_interval, $__range appear in exprs
//     (the real-Prometheus e2e test substitutes exactly these).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
)

const datasourceVar = "${datasource}"

// The recording rules agreed for issue 16 (group kesm.rules). Used only while the rules file
// is absent (it lands on another branch); when it exists, its `record:` names are used.
var agreedRecordingRules = []string{
	"mapping_outcome:kesm_events:rate1m",
	"mapping_outcome:kesm_invocations:rate1m",
	"mapping:kesm_invocation_errors:ratio_rate5m",
	"mapping_le:kesm_invocation_duration_seconds_bucket:rate1m",
	"mapping_quantile:kesm_invocation_duration_seconds:rate1m",
	"mapping:kesm_offset_lag:sum",
}

// Grafana variables an expr may use; the e2e test substitutes exactly these.
var allowedExprVariables = map[string]bool{
	"$mapping": true, "$instance": true, "$__rate_interval": true, "$__range": true,
}

type findings struct{ list []string }

func (f *findings) add(format string, args ...any) {
	f.list = append(f.list, fmt.Sprintf(format, args...))
}

// realError says whether err from an SDK UnmarshalJSONStrict or Validate is a failure.
// v0.0.22 ends those functions with `return errs` where errs is a cog.BuildErrors slice that
// stays nil on success: the returned error interface is then non-nil but holds an empty list
// (message ""). Only a list with entries is a failure. An error of any other type, even with
// an empty message, is treated as a failure rather than guessed at.
func realError(err error) bool {
	if err == nil {
		return false
	}
	var list cog.BuildErrors
	if errors.As(err, &list) {
		return len(list) > 0
	}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			if realError(e) {
				return true
			}
		}
		return false
	}
	return true
}

func describe(err error) string {
	msg := err.Error()
	if msg == "" {
		return fmt.Sprintf("(an empty error of type %T)", err)
	}
	return strings.ReplaceAll(msg, "\n", "; ")
}

func main() {
	docs := flag.String("docs", "docs/operations.md", "the doc with the metric reference table")
	rules := flag.String("rules", "deploy/prometheus/rules.yaml", "the Prometheus rules file")
	verbose := flag.Bool("v", false, "print the panels, exprs and variables checked")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: validate [-docs FILE] [-rules FILE] [-v] DASHBOARD.json")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	path := flag.Arg(0)
	raw, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "validate:", err)
		os.Exit(2)
	}
	known, err := loadMetrics(*docs, *rules, *verbose)
	if err != nil {
		fmt.Fprintln(os.Stderr, "validate:", err)
		os.Exit(2)
	}

	// Without the plugin registry, options and targets decode as free-form maps: nothing
	// below them would be checked.
	plugins.RegisterDefaultPlugins()

	var f findings
	stats := check(raw, known, &f, *verbose)
	if len(f.list) > 0 {
		for _, line := range f.list {
			fmt.Fprintf(os.Stderr, "%s: %s\n", path, line)
		}
		fmt.Fprintf(os.Stderr, "%s: INVALID, %d finding(s)\n", path, len(f.list))
		os.Exit(1)
	}
	fmt.Printf("%s: valid: %d rows, %d panels, %d targets; metrics %s; variables in exprs %s\n",
		path, stats.rows, stats.panels, stats.targets, strings.Join(sortedKeys(stats.metrics), " "),
		strings.Join(sortedKeys(stats.variables), " "))
}

type summary struct {
	rows, panels, targets int
	metrics, variables    map[string]bool
}

func check(raw []byte, known metricSet, f *findings, verbose bool) summary {
	s := summary{metrics: map[string]bool{}, variables: map[string]bool{}}

	var dash dashboard.Dashboard
	if err := dash.UnmarshalJSONStrict(raw); realError(err) {
		f.add("strict decode (dashboard.Dashboard): %s", describe(err))
	} else if err := dash.Validate(); realError(err) {
		f.add("Validate (dashboard.Dashboard): %s", describe(err))
	}

	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		f.add("not a JSON object: %v", err)
		return s
	}
	checkUids(doc, "", f)
	checkVariables(doc, f)

	var panels []map[string]any
	if err := json.Unmarshal(mustMarshal(doc["panels"]), &panels); err != nil || len(panels) == 0 {
		f.add("panels: not a non-empty list of objects")
		return s
	}
	if t, _ := panels[0]["type"].(string); t != "row" {
		f.add("panels[0]: the dashboard starts with a row (one row per concern)")
	}
	ids := map[float64]string{}
	var boxes []box
	for i, p := range panels {
		title, _ := p["title"].(string)
		where := fmt.Sprintf("panels[%d] %q", i, title)
		if t, _ := p["type"].(string); t == "row" {
			s.rows++
			checkRow(p, where, f)
			if nested, _ := p["panels"].([]any); len(nested) > 0 {
				f.add("%s: a row holds its panels in the top-level list (collapsed: false, panels: [])", where)
			}
		} else {
			s.panels++
			s.targets += checkPanel(p, where, known, &s, f, verbose)
		}
		if id, ok := p["id"].(float64); !ok || id < 1 {
			f.add("%s: id missing or not a positive number", where)
		} else if other, dup := ids[id]; dup {
			f.add("%s: id %v already used by %s", where, id, other)
		} else {
			ids[id] = where
		}
		if b, ok := gridBox(p, where, f); ok {
			for _, o := range boxes {
				if b.overlaps(o) {
					f.add("%s: gridPos overlaps %s", where, o.where)
				}
			}
			boxes = append(boxes, b)
		}
	}
	return s
}

func checkRow(p map[string]any, where string, f *findings) {
	var row dashboard.RowPanel
	if err := row.UnmarshalJSONStrict(mustMarshal(p)); realError(err) {
		f.add("%s: strict decode (dashboard.RowPanel): %s", where, describe(err))
	} else if err := row.Validate(); realError(err) {
		f.add("%s: Validate (dashboard.RowPanel): %s", where, describe(err))
	}
	if title, _ := p["title"].(string); title == "" {
		f.add("%s: a row needs a title", where)
	}
}

func checkPanel(p map[string]any, where string, known metricSet, s *summary, f *findings,
	verbose bool) int {
	typ, _ := p["type"].(string)
	if _, ok := cog.ConfigForPanelcfgVariant(typ); !ok {
		f.add("%s: panel type %q is not one the SDK knows: its options would go unchecked", where, typ)
	}
	var panel dashboard.Panel
	if err := panel.UnmarshalJSONStrict(mustMarshal(p)); realError(err) {
		f.add("%s: strict decode (dashboard.Panel): %s", where, describe(err))
	} else if err := panel.Validate(); realError(err) {
		f.add("%s: Validate (dashboard.Panel): %s", where, describe(err))
	}
	if fc, ok := p["fieldConfig"]; !ok {
		f.add("%s: fieldConfig missing", where)
	} else {
		var source dashboard.FieldConfigSource
		if err := source.UnmarshalJSONStrict(mustMarshal(fc)); realError(err) {
			f.add("%s: strict decode of fieldConfig (dashboard.FieldConfigSource): %s", where,
				describe(err))
		} else if err := source.Validate(); realError(err) {
			f.add("%s: Validate of fieldConfig: %s", where, describe(err))
		}
	}
	if _, ok := p["options"]; !ok {
		f.add("%s: options missing", where)
	}
	if title, _ := p["title"].(string); title == "" {
		f.add("%s: a panel needs a title", where)
	}
	checkDatasourceRef(p["datasource"], where+": datasource", f)

	targets, _ := p["targets"].([]any)
	if len(targets) == 0 {
		f.add("%s: no targets", where)
	}
	refIds := map[string]bool{}
	for j, t := range targets {
		tw := fmt.Sprintf("%s targets[%d]", where, j)
		target, ok := t.(map[string]any)
		if !ok {
			f.add("%s: not an object", tw)
			continue
		}
		var q prometheus.Dataquery
		if err := q.UnmarshalJSONStrict(mustMarshal(target)); realError(err) {
			f.add("%s: strict decode (prometheus.Dataquery): %s", tw, describe(err))
		} else if err := q.Validate(); realError(err) {
			f.add("%s: Validate (prometheus.Dataquery): %s", tw, describe(err))
		}
		checkDatasourceRef(target["datasource"], tw+": datasource", f)
		refId, _ := target["refId"].(string)
		if refId == "" {
			f.add("%s: refId missing", tw)
		} else if refIds[refId] {
			f.add("%s: refId %q used twice in the panel", tw, refId)
		}
		refIds[refId] = true
		expr, _ := target["expr"].(string)
		if strings.TrimSpace(expr) == "" {
			f.add("%s: expr missing", tw)
			continue
		}
		if verbose {
			fmt.Printf("%s [%s]: %s\n", where, refId, expr)
		}
		checkExpr(expr, tw, known, s, f)
	}
	return len(targets)
}

func checkDatasourceRef(v any, where string, f *findings) {
	ref, ok := v.(map[string]any)
	if !ok {
		f.add("%s: missing; want {\"type\": \"prometheus\", \"uid\": %q}", where, datasourceVar)
		return
	}
	if ref["type"] != "prometheus" || ref["uid"] != datasourceVar || len(ref) != 2 {
		f.add("%s: %s; want {\"type\": \"prometheus\", \"uid\": %q}", where, mustMarshal(ref),
			datasourceVar)
	}
}

// checkUids: no hard-coded uid anywhere but the dashboard's own.
func checkUids(v any, path string, f *findings) {
	switch x := v.(type) {
	case map[string]any:
		for k, child := range x {
			p := path + "." + k
			if k == "uid" && path != "" && child != datasourceVar {
				f.add("%s: %v: every uid but the dashboard's is %q", p, child, datasourceVar)
			}
			checkUids(child, p, f)
		}
	case []any:
		for i, child := range x {
			checkUids(child, fmt.Sprintf("%s[%d]", path, i), f)
		}
	}
}

func checkVariables(doc map[string]any, f *findings) {
	templating, _ := doc["templating"].(map[string]any)
	list, _ := templating["list"].([]any)
	vars := map[string]map[string]any{}
	for _, v := range list {
		if m, ok := v.(map[string]any); ok {
			name, _ := m["name"].(string)
			vars[name] = m
		}
	}
	ds := vars["datasource"]
	if ds == nil || ds["type"] != "datasource" || ds["query"] != "prometheus" {
		f.add("templating: want a variable `datasource` of type datasource, query prometheus")
	}
	compact := func(v any) string {
		if m, ok := v.(map[string]any); ok {
			v = m["query"]
		}
		s, _ := v.(string)
		return strings.Join(strings.Fields(s), "")
	}
	m := vars["mapping"]
	if m == nil || m["type"] != "query" || compact(m["query"]) != "label_values(kesm_pollers,mapping)" ||
		m["multi"] != true || m["includeAll"] != true {
		f.add("templating: want a variable `mapping`: query label_values(kesm_pollers, mapping), " +
			"multi, includeAll")
	} else {
		checkDatasourceRef(m["datasource"], "templating mapping: datasource", f)
	}
	in := vars["instance"]
	if in == nil || in["type"] != "query" || !strings.Contains(compact(in["query"]), "kesm_build_info") {
		f.add("templating: want a variable `instance` from label_values(kesm_build_info, instance)")
	} else {
		checkDatasourceRef(in["datasource"], "templating instance: datasource", f)
	}
}

type box struct {
	x, y, w, h float64
	where      string
}

func (b box) overlaps(o box) bool {
	return b.x < o.x+o.w && o.x < b.x+b.w && b.y < o.y+o.h && o.y < b.y+b.h
}

func gridBox(p map[string]any, where string, f *findings) (box, bool) {
	g, ok := p["gridPos"].(map[string]any)
	if !ok {
		f.add("%s: gridPos missing", where)
		return box{}, false
	}
	num := func(k string) float64 { v, _ := g[k].(float64); return v }
	b := box{num("x"), num("y"), num("w"), num("h"), where}
	if b.w < 1 || b.h < 1 || b.x < 0 || b.y < 0 || b.x+b.w > 24 {
		f.add("%s: gridPos %s outside the 24-column grid", where, mustMarshal(g))
		return box{}, false
	}
	return b, true
}

func mustMarshal(v any) []byte {
	out, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return out
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// metricSet maps each known metric name to whether its series carry a `mapping` label.
type metricSet map[string]bool

var (
	tableRow   = regexp.MustCompile("^\\|\\s*(`[^|]+`)\\s*\\|\\s*(counter|gauge|histogram)\\s*\\|([^|]*)\\|")
	backticked = regexp.MustCompile("`([a-zA-Z_:][a-zA-Z0-9_:]*)`")
	recordLine = regexp.MustCompile(`(?m)^\s*(?:-\s*)?record:\s*["']?([a-zA-Z_:][a-zA-Z0-9_:]*)`)
)

// loadMetrics reads the metric reference table of the docs and the recording rules.
func loadMetrics(docsPath, rulesPath string, verbose bool) (metricSet, error) {
	docs, err := os.ReadFile(docsPath)
	if err != nil {
		return nil, err
	}
	known := metricSet{}
	inReference := false
	for _, line := range strings.Split(string(docs), "\n") {
		if strings.HasPrefix(line, "#") {
			inReference = strings.TrimSpace(strings.TrimLeft(line, "#")) == "Reference"
			continue
		}
		m := tableRow.FindStringSubmatch(line)
		if !inReference || m == nil {
			continue
		}
		hasMapping := strings.Contains(m[3], "`mapping`")
		for _, name := range backticked.FindAllStringSubmatch(m[1], -1) {
			known[name[1]] = hasMapping
			if m[2] == "histogram" {
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					known[name[1]+suffix] = hasMapping
				}
			}
		}
	}
	if len(known) < 10 {
		return nil, fmt.Errorf("%s: found %d metrics in the table under \"Reference\"; is it still there?",
			docsPath, len(known))
	}
	var recorded []string
	if rules, err := os.ReadFile(rulesPath); err == nil {
		for _, m := range recordLine.FindAllStringSubmatch(string(rules), -1) {
			recorded = append(recorded, m[1])
		}
		if len(recorded) == 0 {
			return nil, fmt.Errorf("%s: no `record:` rules found", rulesPath)
		}
	} else if errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(os.Stderr, "validate: note: %s not found; using the recording-rule names "+
			"agreed for issue 16\n", rulesPath)
		recorded = agreedRecordingRules
	} else {
		return nil, err
	}
	for _, name := range recorded {
		// level:metric:operations; the level names the labels kept (mapping_outcome).
		level := strings.SplitN(name, ":", 2)[0]
		known[name] = level == "mapping" || strings.HasPrefix(level, "mapping_")
	}
	if verbose {
		fmt.Printf("known metrics (%d): %s\n", len(known), strings.Join(sortedMetricNames(known), " "))
	}
	return known, nil
}

func sortedMetricNames(m metricSet) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
