// chart-render renders a Helm chart's templates the way `helm template` does, for the test
// suite (tests/tests/deploy.rs) on machines without Helm: Go's text/template (the engine
// Helm uses) with Helm's `include`, `required` and `.Template`, and the Sprig functions the
// luach chart uses, each implemented as Sprig documents it. Values, chart metadata and
// release arrive as one JSON document (merged by tools/deploy_check.py); the output is a
// JSON object from each template's name to its rendered text.
//
// `toYaml` writes JSON, which is YAML in flow style: the chart uses it only as the whole
// value of a key (`key:` followed by `toYaml … | nindent`), where flow and block style mean
// the same, so the parsed result is what Helm's block-style output gives. Never use it to
// add keys to a mapping or items to a list that the template also writes itself.
//
//	go run tools/chart-render/main.go CHART_DIR INPUT.json
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"text/template"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: chart-render CHART_DIR INPUT.json")
		os.Exit(2)
	}
	out, err := render(os.Args[1], os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "chart-render:", err)
		os.Exit(1)
	}
	os.Stdout.Write(out)
}

func render(chartDir, inputPath string) ([]byte, error) {
	raw, err := os.ReadFile(inputPath)
	if err != nil {
		return nil, err
	}
	var input map[string]interface{}
	if err := json.Unmarshal(raw, &input); err != nil {
		return nil, fmt.Errorf("%s: %w", inputPath, err)
	}
	chart, _ := input["Chart"].(map[string]interface{})
	name, _ := chart["Name"].(string)
	if name == "" {
		return nil, errors.New("input has no Chart.Name")
	}
	files, err := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)

	root := template.New("chart").Option("missingkey=zero")
	include := func(tpl string, data interface{}) (string, error) {
		var buf bytes.Buffer
		t := root.Lookup(tpl)
		if t == nil {
			return "", fmt.Errorf("include: no template %q", tpl)
		}
		if err := t.Execute(&buf, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	root.Funcs(funcs(include))
	var rendered []string
	for _, file := range files {
		text, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		tplName := name + "/templates/" + filepath.Base(file)
		if _, err := root.New(tplName).Parse(string(text)); err != nil {
			return nil, err
		}
		if !strings.HasPrefix(filepath.Base(file), "_") {
			rendered = append(rendered, tplName)
		}
	}
	result := map[string]string{}
	for _, tplName := range rendered {
		data := map[string]interface{}{}
		for k, v := range input {
			data[k] = v
		}
		data["Template"] = map[string]interface{}{"Name": tplName, "BasePath": name + "/templates"}
		text, err := include(tplName, data)
		if err != nil {
			return nil, err
		}
		// Helm prints a missing value as nothing, not Go's "<no value>".
		result[tplName] = strings.ReplaceAll(text, "<no value>", "")
	}
	return json.MarshalIndent(result, "", "  ")
}

func funcs(include func(string, interface{}) (string, error)) template.FuncMap {
	return template.FuncMap{
		"include": include,
		// Helm's `required` refuses only a missing value and the empty string.
		"required": func(msg string, v interface{}) (interface{}, error) {
			if s, ok := v.(string); v == nil || (ok && s == "") {
				return nil, errors.New(msg)
			}
			return v, nil
		},
		"default": func(d interface{}, given ...interface{}) interface{} {
			if len(given) == 0 || empty(given[0]) {
				return d
			}
			return given[0]
		},
		"quote": func(args ...interface{}) string {
			var out []string
			for _, a := range args {
				if a != nil {
					out = append(out, fmt.Sprintf("%q", fmt.Sprint(a)))
				}
			}
			return strings.Join(out, " ")
		},
		"trunc": func(n int, s string) string {
			if n >= 0 && len(s) > n {
				return s[:n]
			}
			return s
		},
		"trimSuffix": func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
		"contains":   func(sub, s string) bool { return strings.Contains(s, sub) },
		"toYaml": func(v interface{}) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
		"toJson": func(v interface{}) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
		"indent": func(n int, s string) string {
			pad := strings.Repeat(" ", n)
			return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
		},
		"nindent": func(n int, s string) string {
			pad := strings.Repeat(" ", n)
			return "\n" + pad + strings.ReplaceAll(s, "\n", "\n"+pad)
		},
		"sha256sum": func(s string) string {
			sum := sha256.Sum256([]byte(s))
			return hex.EncodeToString(sum[:])
		},
	}
}

// empty is Sprig's notion of an empty value: nil, zero numbers, false, and empty strings,
// maps and lists.
func empty(v interface{}) bool {
	if v == nil {
		return true
	}
	r := reflect.ValueOf(v)
	switch r.Kind() {
	case reflect.String, reflect.Map, reflect.Slice, reflect.Array:
		return r.Len() == 0
	case reflect.Bool:
		return !r.Bool()
	case reflect.Float32, reflect.Float64:
		return r.Float() == 0
	case reflect.Int, reflect.Int64, reflect.Int32:
		return r.Int() == 0
	}
	return false
}
