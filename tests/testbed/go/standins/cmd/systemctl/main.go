// The testbed's stand-in for systemd (test hosts run none): one binary, by the name it is run as,
//
//	systemctl     the client: enable/disable (the WantedBy symlinks in /etc/systemd/system/*.wants, as
//	              systemctl makes them), start/stop/restart, is-active/is-enabled/status (queries write
//	              nothing), daemon-reload, mask/unmask;
//	systemd-run   a transient service (--unit NAME, --quiet, --collect, --no-block): started by the
//	              service manager, so it is no child of the caller, as with systemd;
//	systemctl __manager   the service manager itself, run by the testbed beside sshd at the host's
//	              boot: it starts what is enabled, runs each service's ExecStartPre/ExecStart (with
//	              drop-ins, Environment, EnvironmentFile, $VAR expansion as systemd does), waits for
//	              READY=1 of Type=notify services, restarts by Restart=/RestartSec=, stops with
//	              SIGTERM then SIGKILL, and keeps each service's output in /var/log/mlplat-standins/.
//
// Every request that changes something is recorded in /var/log/mlplat-standins/systemctl.log.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

const (
	socketPath = "/run/mlplat-standins/systemd.sock"
	logDir     = "/var/log/mlplat-standins"
)

// unitDirs are searched in systemd's order of precedence.
var unitDirs = []string{"/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"}

type request struct {
	Op      string   `json:"op"`
	Unit    string   `json:"unit,omitempty"`
	Argv    []string `json:"argv,omitempty"`
	NoBlock bool     `json:"noBlock,omitempty"`
}

type reply struct {
	OK      bool   `json:"ok"`
	State   string `json:"state,omitempty"` // active, activating, failed, inactive
	Since   string `json:"since,omitempty"`
	PID     int    `json:"pid,omitempty"`
	Message string `json:"message,omitempty"`
}

func main() {
	name := filepath.Base(os.Args[0])
	var code int
	switch {
	case name == "systemd-run":
		code = systemdRun(os.Args[1:])
	case len(os.Args) > 1 && os.Args[1] == "__manager":
		code = runManager()
	default:
		code = systemctl(os.Args[1:])
	}
	os.Exit(code)
}

func unitName(s string) string {
	if strings.Contains(s, ".") {
		return s
	}
	return s + ".service"
}

// unitFile returns the path of a unit's file, as systemd finds it.
func unitFile(unit string) (string, bool) {
	for _, d := range unitDirs {
		p := filepath.Join(d, unit)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, true
		}
	}
	return "", false
}

func call(req request) (reply, error) {
	conn, err := net.DialTimeout("unix", socketPath, 5*time.Second)
	if err != nil {
		return reply{}, fmt.Errorf("System has not been booted with systemd as init system (PID 1). Can't operate. (the testbed's service manager: %v)", err)
	}
	defer conn.Close()
	// A start waits for the service to be up (Type=notify: READY=1), at most TimeoutStartSec (90 s).
	_ = conn.SetDeadline(time.Now().Add(100 * time.Second))
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return reply{}, err
	}
	var r reply
	if err := json.NewDecoder(bufio.NewReader(conn)).Decode(&r); err != nil {
		return reply{}, fmt.Errorf("no answer from the service manager: %w", err)
	}
	return r, nil
}

func record(args []string) {
	_ = os.MkdirAll(logDir, 0o755)
	f, err := os.OpenFile(filepath.Join(logDir, "systemctl.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%d %s %s\n", time.Now().Unix(), filepath.Base(os.Args[0]), strings.Join(args, " "))
}
