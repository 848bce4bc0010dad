package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

const wantsRoot = "/etc/systemd/system"

// enabledLinks returns the *.wants symlinks that enable a unit.
func enabledLinks(unit string) []string {
	m, _ := filepath.Glob(filepath.Join(wantsRoot, "*.wants", unit))
	return m
}

func masked(unit string) bool {
	target, err := os.Readlink(filepath.Join(wantsRoot, unit))
	return err == nil && target == "/dev/null"
}

func systemctl(args []string) int {
	quiet, now := false, false
	var cmd string
	var units []string
	for _, a := range args {
		switch {
		case a == "-q" || a == "--quiet":
			quiet = true
		case a == "--now":
			now = true
		case strings.HasPrefix(a, "-"): // --no-pager, --system, --no-block, -l ...
		case cmd == "":
			cmd = a
		default:
			units = append(units, unitName(a))
		}
	}
	switch cmd {
	case "is-active", "is-enabled", "status", "show", "list-units", "list-unit-files":
	default:
		record(args)
	}
	status := 0
	switch cmd {
	case "daemon-reload", "daemon-reexec":
		if _, err := call(request{Op: "reload"}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	case "enable":
		for _, u := range units {
			if st := enable(u, quiet); st != 0 {
				return st
			}
			if now {
				status = max(status, start(u))
			}
		}
	case "disable":
		for _, u := range units {
			for _, l := range enabledLinks(u) {
				_ = os.Remove(l)
				if !quiet {
					fmt.Fprintf(os.Stderr, "Removed %q.\n", l)
				}
			}
			if now {
				_, _ = call(request{Op: "stop", Unit: u})
			}
		}
	case "mask":
		for _, u := range units {
			_ = os.MkdirAll(wantsRoot, 0o755)
			_ = os.Symlink("/dev/null", filepath.Join(wantsRoot, u))
		}
	case "unmask":
		for _, u := range units {
			if masked(u) {
				_ = os.Remove(filepath.Join(wantsRoot, u))
			}
		}
	case "start", "restart", "reload-or-restart", "try-restart", "reload":
		for _, u := range units {
			if cmd == "try-restart" {
				if r, err := call(request{Op: "status", Unit: u}); err != nil || r.State != "active" {
					continue
				}
			}
			if cmd == "start" {
				status = max(status, start(u))
			} else {
				status = max(status, restart(u))
			}
		}
	case "stop":
		for _, u := range units {
			if _, err := call(request{Op: "stop", Unit: u}); err != nil {
				fmt.Fprintln(os.Stderr, err)
				status = 1
			}
		}
	case "is-active":
		for _, u := range units {
			r, err := call(request{Op: "status", Unit: u})
			state := "inactive"
			if err == nil {
				state = r.State
			}
			if !quiet {
				fmt.Println(state)
			}
			if state != "active" {
				status = 3
			}
		}
	case "is-enabled":
		for _, u := range units {
			_, exists := unitFile(u)
			switch {
			case masked(u):
				if !quiet {
					fmt.Println("masked")
				}
				status = 1
			case !exists:
				if !quiet {
					fmt.Fprintf(os.Stderr, "Failed to get unit file state for %s: No such file or directory\n", u)
				}
				status = 1
			case len(enabledLinks(u)) > 0:
				if !quiet {
					fmt.Println("enabled")
				}
			default:
				if !quiet {
					fmt.Println("disabled")
				}
				status = 1
			}
		}
	case "status":
		for _, u := range units {
			status = max(status, showStatus(u))
		}
	default:
		fmt.Fprintf(os.Stderr, "systemctl stand-in: '%s' is not handled\n", cmd)
		return 1
	}
	return status
}

func enable(u string, quiet bool) int {
	path, ok := unitFile(u)
	if !ok {
		fmt.Fprintf(os.Stderr, "Failed to enable unit: Unit file %s does not exist.\n", u)
		return 1
	}
	un, err := loadUnit(u)
	if err != nil {
		fmt.Fprintf(os.Stderr, "Failed to enable unit: %v\n", err)
		return 1
	}
	if len(un.wantedBy) == 0 && !quiet {
		fmt.Fprintf(os.Stderr, "The unit files have no installation config (WantedBy=, RequiredBy=, ...).\n")
	}
	for _, target := range un.wantedBy {
		dir := filepath.Join(wantsRoot, target+".wants")
		link := filepath.Join(dir, u)
		if cur, err := os.Readlink(link); err == nil && cur == path {
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			fmt.Fprintf(os.Stderr, "Failed to enable unit: %v\n", err)
			return 1
		}
		_ = os.Remove(link)
		if err := os.Symlink(path, link); err != nil {
			fmt.Fprintf(os.Stderr, "Failed to enable unit: %v\n", err)
			return 1
		}
		if !quiet {
			fmt.Fprintf(os.Stderr, "Created symlink %s → %s.\n", link, path)
		}
	}
	return 0
}

func start(u string) int { return startAs(u, "start") }

func restart(u string) int { return startAs(u, "restart") }

// startAs asks the manager to start or restart a unit and says what systemctl says when it cannot.
func startAs(u, op string) int {
	if _, ok := unitFile(u); !ok {
		fmt.Fprintf(os.Stderr, "Failed to %s %s: Unit %s not found.\n", op, u, u)
		return 5
	}
	if masked(u) {
		fmt.Fprintf(os.Stderr, "Failed to %s %s: Unit %s is masked.\n", op, u, u)
		return 1
	}
	r, err := call(request{Op: op, Unit: u})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if !r.OK {
		fmt.Fprintf(os.Stderr, "Job for %s failed because the control process exited with error code.\n"+
			"See \"systemctl status %s\" and \"journalctl -xeu %s\" for details.\n(%s)\n", u, u, u, r.Message)
		return 1
	}
	return 0
}

// showStatus prints what `systemctl status` prints of a unit (its Loaded: and Active: lines are
// what kubeadm reads); exit 0 when active, 3 when not, 4 for an unknown unit.
func showStatus(u string) int {
	path, ok := unitFile(u)
	if !ok {
		fmt.Fprintf(os.Stderr, "Unit %s could not be found.\n", u)
		return 4
	}
	un, _ := loadUnit(u)
	enabled := "disabled"
	if len(enabledLinks(u)) > 0 {
		enabled = "enabled"
	}
	r, err := call(request{Op: "status", Unit: u})
	state := "inactive (dead)"
	code := 3
	if err == nil {
		switch r.State {
		case "active":
			state, code = "active (running) since "+r.Since, 0
		case "activating":
			state = "activating (start) since " + r.Since
		case "failed":
			state = "failed (Result: exit-code) since " + r.Since
		}
	}
	desc := ""
	if un != nil {
		desc = " - " + un.description
	}
	fmt.Printf("● %s%s\n     Loaded: loaded (%s; %s; preset: enabled)\n", u, desc, path, enabled)
	if un != nil && len(un.dropIns) > 0 {
		fmt.Printf("    Drop-In: %s\n", filepath.Dir(un.dropIns[0]))
		for _, d := range un.dropIns {
			fmt.Printf("             └─%s\n", filepath.Base(d))
		}
	}
	fmt.Printf("     Active: %s\n", state)
	if err == nil && r.PID > 0 {
		fmt.Printf("   Main PID: %d\n", r.PID)
	}
	return code
}

func systemdRun(args []string) int {
	unitNameArg := fmt.Sprintf("run-u%d.service", os.Getpid())
	i := 0
	for i < len(args) {
		a := args[i]
		switch {
		case a == "--unit" && i+1 < len(args):
			unitNameArg = unitName(args[i+1])
			i += 2
			continue
		case strings.HasPrefix(a, "--unit="):
			unitNameArg = unitName(strings.TrimPrefix(a, "--unit="))
		case a == "--quiet" || a == "-q" || a == "--collect" || a == "-G" || a == "--no-block":
		case strings.HasPrefix(a, "-"):
			fmt.Fprintf(os.Stderr, "systemd-run stand-in: option %s is not handled\n", a)
			return 1
		default:
			goto command
		}
		i++
	}
command:
	argv := args[i:]
	if len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "systemd-run stand-in: a command is needed")
		return 1
	}
	record(append([]string{"--unit", unitNameArg}, argv...))
	r, err := call(request{Op: "run", Unit: unitNameArg, Argv: argv})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if !r.OK {
		fmt.Fprintln(os.Stderr, r.Message)
		return 1
	}
	return 0
}
