package main

import (
	"fmt"
	"regexp"
	"strings"
)

// A small PromQL scanner: enough to find the metric selectors of an expr and their label
// matchers, and the Grafana variables it uses. It does not judge the PromQL itself: the
// real-Prometheus e2e test runs every expr.

type tokenKind int

const (
	tIdent tokenKind = iota
	tString
	tNumber
	tVariable
	tPunct
)

type token struct {
	kind tokenKind
	text string // a string's value without quotes
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentPart(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

func lex(expr string) ([]token, error) {
	var out []token
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#':
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			var b strings.Builder
			for ; j < len(expr) && expr[j] != c; j++ {
				if expr[j] == '\\' && c != '`' && j+1 < len(expr) {
					j++
				}
				b.WriteByte(expr[j])
			}
			if j >= len(expr) {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			out = append(out, token{tString, b.String()})
			i = j + 1
		case c == '$':
			j := i + 1
			braced := j < len(expr) && expr[j] == '{'
			if braced {
				j++
			}
			start := j
			for j < len(expr) && isIdentPart(expr[j]) {
				j++
			}
			name := expr[start:j]
			if braced {
				if j >= len(expr) || expr[j] != '}' {
					return nil, fmt.Errorf("unterminated ${ at %d", i)
				}
				j++
			}
			out = append(out, token{tVariable, "$" + name})
			i = j
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdentPart(expr[j]) {
				j++
			}
			out = append(out, token{tIdent, expr[i:j]})
			i = j
		case (c >= '0' && c <= '9') || c == '.':
			j := i
			for j < len(expr) && (isIdentPart(expr[j]) || expr[j] == '.') {
				j++
			}
			out = append(out, token{tNumber, expr[i:j]})
			i = j
		default:
			out = append(out, token{tPunct, string(c)})
			i++
		}
	}
	return out, nil
}

var (
	labelListKeywords = map[string]bool{
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true,
		"group_right": true,
	}
	otherKeywords = map[string]bool{
		"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
		"inf": true, "nan": true, "Inf": true, "NaN": true, "start": true, "end": true,
		// aggregations may be followed by `by (...)` instead of their parenthesis
		"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true,
		"stdvar": true, "count": true, "count_values": true, "bottomk": true, "topk": true,
		"quantile": true, "limitk": true, "limit_ratio": true,
	}
	variableInString = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)
)

type matcher struct{ label, op, value string }

type selector struct {
	metric   string
	matchers []matcher
}

func (s selector) has(label, op, value string) bool {
	for _, m := range s.matchers {
		if m.label == label && m.op == op && m.value == value {
			return true
		}
	}
	return false
}

// scan returns the selectors of expr and the Grafana variables it uses.
func scan(expr string) ([]selector, map[string]bool, error) {
	toks, err := lex(expr)
	if err != nil {
		return nil, nil, err
	}
	vars := map[string]bool{}
	var sels []selector
	depth := 0
	closing := func(i int, open, close string) (int, error) {
		n := 0
		for j := i; j < len(toks); j++ {
			if toks[j].kind == tPunct && toks[j].text == open {
				n++
			} else if toks[j].kind == tPunct && toks[j].text == close {
				n--
				if n == 0 {
					return j, nil
				}
			}
		}
		return 0, fmt.Errorf("unbalanced %s", open)
	}
	next := func(i int) token {
		if i+1 < len(toks) {
			return toks[i+1]
		}
		return token{}
	}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch t.kind {
		case tVariable:
			vars[t.text] = true
		case tString:
			for _, m := range variableInString.FindAllStringSubmatch(t.text, -1) {
				vars["$"+m[1]] = true
			}
		case tPunct:
			switch t.text {
			case "(":
				depth++
			case ")":
				depth--
			case "[":
				end, err := closing(i, "[", "]")
				if err != nil {
					return nil, nil, err
				}
				for _, inner := range toks[i+1 : end] {
					if inner.kind == tVariable {
						vars[inner.text] = true
					}
				}
				i = end
			case "{":
				return nil, nil, fmt.Errorf("a selector without a metric name")
			}
		case tIdent:
			nt := next(i)
			switch {
			case labelListKeywords[t.text]:
				if nt.kind == tPunct && nt.text == "(" {
					end, err := closing(i+1, "(", ")")
					if err != nil {
						return nil, nil, err
					}
					i = end
				}
			case otherKeywords[t.text]:
			case nt.kind == tPunct && nt.text == "(":
				// a function call
			default:
				sel := selector{metric: t.text}
				if nt.kind == tPunct && nt.text == "{" {
					end, err := closing(i+1, "{", "}")
					if err != nil {
						return nil, nil, err
					}
					sel.matchers, err = parseMatchers(toks[i+2 : end])
					if err != nil {
						return nil, nil, fmt.Errorf("%s: %v", t.text, err)
					}
					for _, m := range sel.matchers {
						for _, v := range variableInString.FindAllStringSubmatch(m.value, -1) {
							vars["$"+v[1]] = true
						}
					}
					i = end
				}
				sels = append(sels, sel)
			}
		}
	}
	if depth != 0 {
		return nil, nil, fmt.Errorf("unbalanced (")
	}
	return sels, vars, nil
}

func parseMatchers(toks []token) ([]matcher, error) {
	var out []matcher
	for i := 0; i < len(toks); {
		if toks[i].kind == tPunct && toks[i].text == "," {
			i++
			continue
		}
		if toks[i].kind != tIdent {
			return nil, fmt.Errorf("a label name expected, got %q", toks[i].text)
		}
		m := matcher{label: toks[i].text}
		i++
		for i < len(toks) && toks[i].kind == tPunct && strings.Contains("=!~", toks[i].text) {
			m.op += toks[i].text
			i++
		}
		if i >= len(toks) || toks[i].kind != tString {
			return nil, fmt.Errorf("label %s: a quoted value expected", m.label)
		}
		switch m.op {
		case "=", "!=", "=~", "!~":
		default:
			return nil, fmt.Errorf("label %s: bad operator %q", m.label, m.op)
		}
		m.value = toks[i].text
		out = append(out, m)
		i++
	}
	return out, nil
}

// checkExpr applies the dashboard's rules for exprs (see the package comment).
func checkExpr(expr, where string, known metricSet, s *summary, f *findings) {
	sels, vars, err := scan(expr)
	if err != nil {
		f.add("%s: expr does not scan (%v): %s", where, err, expr)
		return
	}
	if len(sels) == 0 {
		f.add("%s: expr reads no metric: %s", where, expr)
	}
	for v := range vars {
		s.variables[v] = true
		if !allowedExprVariables[v] {
			f.add("%s: Grafana variable %s in expr; allowed: $mapping $instance $__rate_interval "+
				"$__range (the e2e test substitutes only these)", where, v)
		}
	}
	processJoined := false
	for _, sel := range sels {
		if sel.metric == "kesm_build_info" {
			processJoined = true
		}
	}
	for _, sel := range sels {
		s.metrics[sel.metric] = true
		hasMapping, ok := known[sel.metric]
		switch {
		case !ok:
			f.add("%s: metric %s is neither in the reference table of the docs nor a recording "+
				"rule", where, sel.metric)
		case hasMapping && !sel.has("mapping", "=~", "$mapping"):
			f.add("%s: %s has a mapping label: select it with mapping=~\"$mapping\"", where,
				sel.metric)
		case !hasMapping && !sel.has("instance", "=~", "$instance"):
			f.add("%s: %s has no mapping label: select it with instance=~\"$instance\"", where,
				sel.metric)
		}
		if strings.HasPrefix(sel.metric, "process_") && !processJoined {
			f.add("%s: %s: join with kesm_build_info (and on (job, instance) ...): other "+
				"exporters have process_* series too", where, sel.metric)
		}
	}
}
