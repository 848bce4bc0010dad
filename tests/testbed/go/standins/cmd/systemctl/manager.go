package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	startTimeout = 90 * time.Second // TimeoutStartSec's default
	stopTimeout  = 10 * time.Second
)

type service struct {
	name      string
	state     string // inactive, activating, active, failed
	since     time.Time
	cmd       *exec.Cmd
	stopping  bool
	transient bool
	exited    chan struct{}
}

type manager struct {
	mu       sync.Mutex
	services map[string]*service
}

func runManager() int {
	_ = os.MkdirAll(filepath.Dir(socketPath), 0o755)
	_ = os.MkdirAll(logDir, 0o755)
	_ = os.Remove(socketPath)
	lis, err := net.Listen("unix", socketPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "service manager: %v\n", err)
		return 1
	}
	_ = os.Chmod(socketPath, 0o600)
	m := &manager{services: map[string]*service{}}
	go m.boot()
	for {
		conn, err := lis.Accept()
		if err != nil {
			return 1
		}
		go m.serve(conn)
	}
}

// machineUnits lists the services the machine under the testbed has enabled: a test host sees them
// through its /etc overlay, but they are not the host's (its sshd is the testbed's).
const machineUnits = "/etc/mlplat-testbed/machine-units"

// boot starts every unit that is enabled (a symlink in a *.wants directory), as at a host's boot,
// but for the machine's own.
func (m *manager) boot() {
	skip := map[string]bool{}
	if data, err := os.ReadFile(machineUnits); err == nil {
		for _, u := range strings.Fields(string(data)) {
			skip[u] = true
		}
	}
	links, _ := filepath.Glob("/etc/systemd/system/*.wants/*")
	sort.Strings(links)
	for _, l := range links {
		if !skip[filepath.Base(l)] && strings.HasSuffix(l, ".service") {
			go m.start(filepath.Base(l))
		}
	}
}

func (m *manager) serve(conn net.Conn) {
	defer conn.Close()
	var req request
	if err := json.NewDecoder(bufio.NewReader(conn)).Decode(&req); err != nil {
		return
	}
	var r reply
	switch req.Op {
	case "start":
		r = m.start(req.Unit)
	case "stop":
		r = m.stop(req.Unit)
	case "restart":
		m.stop(req.Unit)
		r = m.start(req.Unit)
	case "status":
		r = m.status(req.Unit)
	case "run":
		r = m.run(req.Unit, req.Argv)
	case "reload":
		r = reply{OK: true}
	default:
		r = reply{Message: "unknown request " + req.Op}
	}
	_ = json.NewEncoder(conn).Encode(r)
}

func (m *manager) get(name string) *service {
	s := m.services[name]
	if s == nil {
		s = &service{name: name, state: "inactive", since: time.Now()}
		m.services[name] = s
	}
	return s
}

func (m *manager) status(name string) reply {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.get(name)
	r := reply{OK: true, State: s.state, Since: s.since.UTC().Format("Mon 2006-01-02 15:04:05 UTC")}
	if s.cmd != nil && s.cmd.Process != nil && s.state != "inactive" && s.state != "failed" {
		r.PID = s.cmd.Process.Pid
	}
	return r
}

func (m *manager) setState(s *service, state string) {
	if s.state != state {
		s.state, s.since = state, time.Now()
	}
}

func logFile(name string) (*os.File, error) {
	return os.OpenFile(filepath.Join(logDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
}

// start runs ExecStartPre then ExecStart; for Type=notify it answers once READY=1 arrives.
func (m *manager) start(name string) reply {
	u, err := loadUnit(name)
	if err != nil {
		return reply{Message: err.Error()}
	}
	m.mu.Lock()
	s := m.get(name)
	if s.state == "active" || s.state == "activating" {
		m.mu.Unlock()
		return reply{OK: true, State: s.state}
	}
	m.setState(s, "activating")
	s.stopping = false
	m.mu.Unlock()

	env, err := u.env()
	if err != nil {
		return m.failed(s, err.Error())
	}
	out, err := logFile(name)
	if err != nil {
		return m.failed(s, err.Error())
	}
	defer out.Close()
	for _, line := range u.execStartPre {
		argv, ignore, err := commandLine(line, env)
		if err != nil {
			return m.failed(s, err.Error())
		}
		pre := exec.Command(argv[0], argv[1:]...)
		pre.Env, pre.Stdout, pre.Stderr, pre.Dir = env, out, out, "/"
		if err := pre.Run(); err != nil && !ignore {
			return m.failed(s, fmt.Sprintf("ExecStartPre %s: %v", line, err))
		}
	}
	if len(u.execStart) == 0 {
		return m.failed(s, fmt.Sprintf("%s has no ExecStart= setting", name))
	}
	argv, _, err := commandLine(u.execStart[len(u.execStart)-1], env)
	if err != nil {
		return m.failed(s, err.Error())
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env, cmd.Stdout, cmd.Stderr, cmd.Dir = env, out, out, "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var notify *net.UnixConn
	if u.serviceType == "notify" {
		path := filepath.Join(filepath.Dir(socketPath), "notify-"+name)
		_ = os.Remove(path)
		if notify, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"}); err != nil {
			return m.failed(s, err.Error())
		}
		defer func() { notify.Close(); os.Remove(path) }()
		cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+path)
	}
	if err := cmd.Start(); err != nil {
		return m.failed(s, err.Error())
	}
	exited := make(chan struct{})
	m.mu.Lock()
	s.cmd, s.exited = cmd, exited
	m.mu.Unlock()
	go m.watch(s, u, cmd, exited)
	if notify != nil {
		ready := make(chan bool, 1)
		go func() {
			buf := make([]byte, 4096)
			_ = notify.SetReadDeadline(time.Now().Add(startTimeout))
			for {
				n, _, err := notify.ReadFromUnix(buf)
				if err != nil {
					ready <- false
					return
				}
				if strings.Contains(string(buf[:n]), "READY=1") {
					ready <- true
					return
				}
			}
		}()
		select {
		case ok := <-ready:
			if !ok {
				m.stop(name)
				return m.failed(s, "start operation timed out")
			}
		case <-exited:
			return reply{Message: "the service's main process exited before it was ready"}
		}
	}
	m.mu.Lock()
	if s.cmd == cmd {
		m.setState(s, "active")
	}
	m.mu.Unlock()
	return reply{OK: true, State: "active", PID: cmd.Process.Pid}
}

func (m *manager) failed(s *service, why string) reply {
	m.mu.Lock()
	m.setState(s, "failed")
	m.mu.Unlock()
	if f, err := logFile(s.name); err == nil {
		fmt.Fprintf(f, "%s: %s\n", s.name, why)
		f.Close()
	}
	return reply{Message: why}
}

// watch reaps the main process and applies Restart= (always, on-failure), as systemd does.
func (m *manager) watch(s *service, u *unit, cmd *exec.Cmd, exited chan struct{}) {
	err := cmd.Wait()
	close(exited)
	m.mu.Lock()
	if s.cmd != cmd {
		m.mu.Unlock()
		return
	}
	stopping := s.stopping
	failed := err != nil
	if stopping || !failed {
		m.setState(s, "inactive")
	} else {
		m.setState(s, "failed")
	}
	if s.transient {
		delete(m.services, s.name)
	}
	m.mu.Unlock()
	again := !stopping && !s.transient && (u.restart == "always" || (u.restart == "on-failure" && failed))
	if again {
		time.Sleep(u.restartSec)
		m.mu.Lock()
		still := !s.stopping && s.cmd == cmd
		m.mu.Unlock()
		if still {
			m.start(s.name)
		}
	}
}

// stop sends SIGTERM to the main process and SIGKILL after the stop timeout.
func (m *manager) stop(name string) reply {
	m.mu.Lock()
	s := m.get(name)
	s.stopping = true
	cmd, exited := s.cmd, s.exited
	m.mu.Unlock()
	if cmd != nil && cmd.Process != nil && exited != nil {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(stopTimeout):
				_ = cmd.Process.Kill()
				<-exited
			}
		}
	}
	m.mu.Lock()
	m.setState(s, "inactive")
	m.mu.Unlock()
	return reply{OK: true, State: "inactive"}
}

// run starts a transient service (systemd-run).
func (m *manager) run(name string, argv []string) reply {
	if len(argv) == 0 {
		return reply{Message: "a command is needed"}
	}
	m.mu.Lock()
	if s := m.services[name]; s != nil && (s.state == "active" || s.state == "activating") {
		m.mu.Unlock()
		return reply{Message: fmt.Sprintf("Failed to start transient service unit: Unit %s was already loaded or has a fragment file.", name)}
	}
	s := m.get(name)
	s.transient = true
	m.mu.Unlock()
	out, err := logFile(name)
	if err != nil {
		return m.failed(s, err.Error())
	}
	defer out.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Stdout, cmd.Stderr, cmd.Dir = out, out, "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return m.failed(s, err.Error())
	}
	exited := make(chan struct{})
	m.mu.Lock()
	s.cmd, s.exited = cmd, exited
	m.setState(s, "active")
	m.mu.Unlock()
	go m.watch(s, &unit{name: name, restart: "no"}, cmd, exited)
	return reply{OK: true, State: "active", PID: cmd.Process.Pid}
}
