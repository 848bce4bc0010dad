// Package standin holds what every testbed stand-in shares: the version it plays, and systemd's
// readiness notification.
package standin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net"
	"os"
	"strings"
)

// versionMark starts the trailer that tests/testbed/standin-mirror.py appends to a stand-in binary
// when it serves it as the artifact of one version (an ELF file ignores bytes after its sections):
// "\nMLPLAT-STANDIN-VERSION <version>\n". One build plays every version a matrix row names.
const versionMark = "\nMLPLAT-STANDIN-VERSION "

// Version returns the version this binary was served as, read from its own trailer; without one
// (a binary straight from the build), fallback "0.0.0-testbed" is returned so that no test mistakes
// it for a release.
func Version(name string) string {
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		return "0.0.0-testbed"
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() < 128 {
		return "0.0.0-testbed"
	}
	buf := make([]byte, 128)
	if _, err := f.ReadAt(buf, st.Size()-128); err != nil && err != io.EOF {
		return "0.0.0-testbed"
	}
	i := bytes.LastIndex(buf, []byte(versionMark))
	if i < 0 {
		return "0.0.0-testbed"
	}
	return strings.TrimSpace(string(buf[i+len(versionMark):]))
}

// Digest returns a stable hex digest standing in for an image's content digest.
func Digest(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return hex.EncodeToString(sum[:])
}

// NotifyReady tells the service manager that a Type=notify service is ready (sd_notify READY=1),
// when it runs under one that asked ($NOTIFY_SOCKET).
func NotifyReady() {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return
	}
	conn, err := net.Dial("unixgram", addr)
	if err != nil {
		return
	}
	defer conn.Close()
	_, _ = conn.Write([]byte("READY=1"))
}
