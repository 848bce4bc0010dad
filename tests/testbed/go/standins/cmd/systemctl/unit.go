package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// unit is what the stand-in reads of a service unit and its drop-ins (systemd.unit(5),
// systemd.service(5), systemd.exec(5)).
type unit struct {
	name         string
	path         string
	dropIns      []string
	description  string
	serviceType  string
	execStartPre []string
	execStart    []string
	environment  []string // KEY=VALUE, in order
	envFiles     []string // "-" prefix: optional
	restart      string
	restartSec   time.Duration
	wantedBy     []string
}

// loadUnit reads the unit file and its drop-ins (<dir>/<unit>.d/*.conf of every unit directory,
// applied in file-name order); an assignment of an empty ExecStart resets the list, as in systemd.
func loadUnit(name string) (*unit, error) {
	path, ok := unitFile(name)
	if !ok {
		return nil, fmt.Errorf("Unit %s not found.", name)
	}
	u := &unit{name: name, path: path, serviceType: "simple", restart: "no", restartSec: 100 * time.Millisecond}
	files := []string{path}
	var drops []string
	for _, d := range unitDirs {
		m, _ := filepath.Glob(filepath.Join(d, name+".d", "*.conf"))
		drops = append(drops, m...)
	}
	sort.SliceStable(drops, func(i, j int) bool { return filepath.Base(drops[i]) < filepath.Base(drops[j]) })
	u.dropIns = drops
	files = append(files, drops...)
	for _, f := range files {
		if err := u.parse(f); err != nil {
			return nil, err
		}
	}
	return u, nil
}

func (u *unit) parse(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	section := ""
	sc := bufio.NewScanner(f)
	var cont string
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasSuffix(line, "\\") {
			cont += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		line = cont + line
		cont = ""
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch section + "." + key {
		case "Unit.Description":
			u.description = value
		case "Service.Type":
			u.serviceType = value
		case "Service.ExecStart":
			if value == "" {
				u.execStart = nil
			} else {
				u.execStart = append(u.execStart, value)
			}
		case "Service.ExecStartPre":
			if value == "" {
				u.execStartPre = nil
			} else {
				u.execStartPre = append(u.execStartPre, value)
			}
		case "Service.Environment":
			words, err := splitWords(value)
			if err != nil {
				return fmt.Errorf("%s: Environment=%s: %v", path, value, err)
			}
			u.environment = append(u.environment, words...)
		case "Service.EnvironmentFile":
			u.envFiles = append(u.envFiles, value)
		case "Service.Restart":
			u.restart = value
		case "Service.RestartSec":
			u.restartSec = parseSeconds(value)
		case "Install.WantedBy":
			u.wantedBy = append(u.wantedBy, strings.Fields(value)...)
		}
	}
	return sc.Err()
}

func parseSeconds(v string) time.Duration {
	if d, err := time.ParseDuration(v); err == nil {
		return d
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Duration(n * float64(time.Second))
	}
	return 100 * time.Millisecond
}

// splitWords splits as systemd splits a command line or an Environment= value: on whitespace,
// with double and single quotes grouping.
func splitWords(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inWord := false
	quote := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else if c == '\\' && i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			} else {
				cur.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote, inWord = c, true
		case c == ' ' || c == '\t':
			if inWord {
				out = append(out, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unbalanced quotes")
	}
	if inWord {
		out = append(out, cur.String())
	}
	return out, nil
}

// env is the service's environment: systemd's default PATH, then Environment=, then each
// EnvironmentFile= (a missing file with "-" is skipped; without it the start fails).
func (u *unit) env() ([]string, error) {
	vars := map[string]string{"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	order := []string{"PATH"}
	set := func(k, v string) {
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	for _, kv := range u.environment {
		if k, v, ok := strings.Cut(kv, "="); ok {
			set(k, v)
		}
	}
	for _, ef := range u.envFiles {
		optional := strings.HasPrefix(ef, "-")
		path := strings.TrimPrefix(ef, "-")
		data, err := os.ReadFile(path)
		if err != nil {
			if optional && os.IsNotExist(err) {
				continue
			}
			return nil, fmt.Errorf("Failed to load environment files: %v", err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			v = strings.TrimSpace(v)
			if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
				v = v[1 : len(v)-1]
			}
			set(strings.TrimSpace(k), v)
		}
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+vars[k])
	}
	return out, nil
}

// commandLine turns an Exec line into argv as systemd does: its prefixes ("-" ignores a failure),
// "$VAR" replaced by the variable's words, "${VAR}" by its value as one word.
func commandLine(line string, env []string) (argv []string, ignoreFailure bool, err error) {
	for len(line) > 0 && strings.ContainsRune("-@+!:", rune(line[0])) {
		if line[0] == '-' {
			ignoreFailure = true
		}
		line = line[1:]
	}
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	words, err := splitWords(line)
	if err != nil {
		return nil, false, err
	}
	for _, w := range words {
		switch {
		case strings.HasPrefix(w, "${") && strings.HasSuffix(w, "}"):
			argv = append(argv, vars[w[2:len(w)-1]])
		case strings.HasPrefix(w, "$") && len(w) > 1:
			argv = append(argv, strings.Fields(vars[w[1:]])...)
		default:
			argv = append(argv, os.Expand(w, func(k string) string { return vars[k] }))
		}
	}
	if len(argv) == 0 {
		return nil, false, fmt.Errorf("empty command line")
	}
	return argv, ignoreFailure, nil
}
