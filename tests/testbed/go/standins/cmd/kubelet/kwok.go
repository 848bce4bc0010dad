package main

import (
	"bufio"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"mlplat.test/testbed/standins/internal/images"
)

//go:embed kwok/kwok.yaml
var kwokConfig string

const (
	programsPath = "/etc/mlplat-testbed/programs" // "name path" per line, written by the testbed
	kwokDir      = "/var/lib/kubelet/mlplat-standin-kwok"
	// Written by kubeadm init only (cmd/kubeadm/app/phases/kubeconfig), never by a join.
	superAdminConf = "/etc/kubernetes/super-admin.conf"
	adminConf      = "/etc/kubernetes/admin.conf"
)

// testbedProgram returns the path of one of the testbed's programs on this host.
func testbedProgram(name string) (string, error) {
	f, err := os.Open(programsPath)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) == 2 && fields[0] == name {
			return fields[1], nil
		}
	}
	return "", fmt.Errorf("%s names no %s", programsPath, name)
}

// runKwok plays the cluster's pods with kwok while this kubelet runs, on the node where kubeadm init
// ran (the only one with super-admin.conf): kwok must list every Node, which a node's own credentials
// may not (the Node authorizer lets a kubelet read only its own Node), so it runs with admin.conf of
// that control plane, for all nodes. It starts once the node is registered, is restarted when it
// exits, and dies with the kubelet.
func (k *kubelet) runKwok(ctx context.Context) {
	for ctx.Err() == nil {
		k.mu.Lock()
		registered := k.nodeUID != ""
		k.mu.Unlock()
		if _, err := os.Stat(superAdminConf); err != nil {
			sleep(ctx, 5*time.Second)
			continue
		}
		if !registered {
			sleep(ctx, time.Second)
			continue
		}
		if err := k.kwokOnce(ctx); err != nil && ctx.Err() == nil {
			k.logf("kwok for node %s: %v (restarting in 10 s)", k.nodeName, err)
		}
		sleep(ctx, 10*time.Second)
	}
}

func (k *kubelet) kwokOnce(ctx context.Context) error {
	bin, err := testbedProgram("kwok")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(kwokDir, "home"), 0o700); err != nil {
		return err
	}
	cfg, err := kwokConfigFor(images.PodImagesPath)
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(kwokDir, "kwok.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	log, err := os.OpenFile(filepath.Join(kwokDir, "kwok.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := kwokCommand(ctx, bin, cfgPath, filepath.Join(kwokDir, "home"))
	cmd.Stdout, cmd.Stderr = log, log
	return cmd.Run()
}

// kwokCommand is kwok's command line. kwok is the kubelet's part, not a container: it ends with the
// kubelet (killed when the kubelet's context ends, and by the kernel when the kubelet's process dies,
// however it dies), as a kubelet's work ends with it; containers outlive the kubelet (startDetached).
func kwokCommand(ctx context.Context, bin, cfgPath, home string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, "--kubeconfig="+adminConf, "--config="+cfgPath)
	// An empty work dir, so that no ~/.kwok/kwok.yaml is read besides this config.
	cmd.Env = []string{"KWOK_WORKDIR=" + home, "HOME=" + home, "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// kwokConfigFor fills kwok's configuration in: every pod stage also requires that no container's
// image is one of the testbed's pod images (in any registry), whose pods this kubelet runs.
func kwokConfigFor(podImagesPath string) (string, error) {
	list, err := images.LoadPodImages(podImagesPath)
	if err != nil {
		return "", err
	}
	requirement := ""
	if len(list) > 0 {
		alts := make([]string, 0, len(list))
		for _, p := range list {
			alts = append(alts, regexp.QuoteMeta(p.Repository))
		}
		re, _ := json.Marshal("(^|/)(" + strings.Join(alts, "|") + ")(:|@|$)")
		query := fmt.Sprintf("[.spec.initContainers[]?.image, .spec.containers[]?.image | select(test(%s))] | length", re)
		requirement = fmt.Sprintf("- {key: '%s', operator: In, values: [\"0\"]}", strings.ReplaceAll(query, "'", "''"))
	}
	return strings.ReplaceAll(kwokConfig, "#@NOT_RUN_BY_KUBELET@", requirement), nil
}
