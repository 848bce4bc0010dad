#include "phases/phases.hpp"

#include "kube/kubeadm.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"

#include <fmt/core.h>

namespace mlplat::phases {

using namespace workflow;

namespace {

using kube::k_kubeadm_init_config;
using kube::k_remote_run_dir;
using kube::render_init_config;

Result<Phase> init_phase(transport::Fleet& fleet, const config::Cluster& cluster, const compat::Row& row, size_t first_control_plane,
                         std::chrono::seconds api_deadline = std::chrono::seconds(300))
{
  TRY_ASSIGN(const std::string config, render_init_config(cluster, row, cluster.hosts[first_control_plane]));
  // kubeadm init runs as a transient service of the host, not as a child of mlplat's SSH session: a
  // client that dies (kill -9, a dropped connection) would otherwise kill kubeadm half way, leaving a
  // control plane without its bootstrap-token RBAC, cluster-info or labels, which a later run could not
  // tell from a finished one. Its exit status lands in a file; init is done when that file says 0.
  const std::string unit = "mlplat-kubeadm-init";
  const std::string files = fmt::format("{}/{}", k_remote_run_dir, unit);
  const std::string init_check = fmt::format(
    "if [ -f {0}.rc ]; then [ \"$(cat {0}.rc)\" = 0 ] && exit 0; exit 1; fi\n"
    "systemctl is-active --quiet {1}.service && exit 1\n"
    // Initialized before mlplat ran kubeadm as a service (or by hand): what kubeadm leaves at its end.
    "{2} || exit 1\nexit 0\n",
    files, unit, kube::k_initialized_test);
  const std::string init_command =
    fmt::format("/usr/local/bin/kubeadm init --config {} --skip-token-print --skip-certificate-key-print", k_kubeadm_init_config);
  const std::string init_apply = fmt::format(
    "mkdir -p {0} && chmod 0700 {0}\n"
    "if [ ! -f {1}.rc ] && ! systemctl is-active --quiet {2}.service; then\n"
    "  systemd-run --quiet --collect --unit {2} /bin/sh -c '{3} > {1}.log 2>&1; echo $? > {1}.rc.tmp; mv {1}.rc.tmp {1}.rc'\n"
    "fi\n"
    "i=0\nwhile [ ! -f {1}.rc ]; do\n"
    "  [ $i -lt {4} ] || {{ echo 'kubeadm init is still running after {4} s ({2}.service; its output: {1}.log)' >&2; exit 124; }}\n"
    "  i=$((i + 1)); sleep 1\ndone\n"
    "rc=$(cat {1}.rc)\n"
    "if [ \"$rc\" != 0 ]; then\n"
    "  tail -n 20 {1}.log >&2\n"
    "  echo \"kubeadm init failed (exit $rc); it is not run again by itself: read {1}.log, run kubeadm reset -f on this host, "
    "remove {1}.rc, then run mlplat install again\" >&2\n"
    "fi\nexit $rc\n",
    k_remote_run_dir, files, unit, init_command, api_deadline.count() + 60);
  Phase p;
  p.name = "init";
  p.summary = fmt::format("kubeadm init of Kubernetes {} on {}", row.kubernetes.str(), cluster.hosts[first_control_plane].name);
  p.hosts = {first_control_plane};
  p.deadline = api_deadline + std::chrono::seconds(120);
  p.steps = [&fleet, config, init_check, init_apply, api_deadline](size_t) {
    std::vector<Step> steps;
    // The config (0600: it names the cluster's addresses), checked by kubeadm itself once written.
    Step written = files_step(fleet, "kubeadm-config", {{k_kubeadm_init_config, config, 0600}},
                              fmt::format("kubeadm config validate --config {}", k_kubeadm_init_config));
    // Once the cluster is initialised the file is what init ran with: a cluster file changed since
    // (hosts added) does not rewrite it on a control plane that must see no change.
    auto compare = written.check;
    written.check = [&fleet, compare](size_t h) -> Result<bool> {
      TRY_ASSIGN(const bool initialized,
                 converged(fleet, h, read_only("check whether kubeadm init ran here (admin.conf, the API server's manifest)",
                                               fmt::format("{} && exit 0\nexit 1\n", kube::k_initialized_test))));
      return initialized ? true : compare(h);
    };
    steps.push_back(std::move(written));
    Step init = script_step(fleet, "kubeadm-init", sha256_hex(config), "check whether kubeadm init already ran", init_check,
                            "kubeadm init, as a service of the host (the token and the certificate key are not printed)", init_apply,
                            {.apply_deadline = api_deadline + std::chrono::seconds(90)});
    init.once = true; // never twice, whatever the host looks like later
    Step ready = wait_step(fleet, "api-ready", "the API server to answer /readyz (kubectl get --raw /readyz)",
                           kubectl() + " get --raw /readyz >/dev/null 2>&1", api_deadline);
    steps.push_back(std::move(init));
    steps.push_back(std::move(ready));
    return steps;
  };
  return p;
}

} // namespace

PhaseSpec init()
{
  PhaseSpec spec;
  spec.path = "cluster/init";
  spec.summary = "kubeadm init on the first control plane, never twice; the API server answering";
  // A run killed before it journalled the init still wrote kubeadm's config: what kubeadm left is ours.
  spec.owns = {{"kubeadm-config", {"OS-021", "NET-004"}}};
  spec.build = [](Context& ctx) -> Result<Phase> { return init_phase(ctx.fleet, ctx.cluster, *ctx.row, ctx.first_control_plane); };
  return spec;
}

} // namespace mlplat::phases
