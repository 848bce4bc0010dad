#include "install/addons.hpp"

#include "assets/assets.hpp"
#include "install/platform.hpp"
#include "install/steps.hpp"
#include "util/fs.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"

#include <fmt/core.h>

namespace mlplat::install {

namespace {

constexpr const char* k_manifest_dir = "/etc/kubernetes/mlplat/manifests";

// The image of the row whose repository ends with `repository` ("openebs/linux-utils").
Result<std::string> image_of(const compat::Row& row, const std::string& repository)
{
  for (const auto& image : row.images) {
    const auto colon = image.rfind(':');
    const std::string repo = image.substr(0, colon);
    if (repo.size() >= repository.size() && repo.compare(repo.size() - repository.size(), repository.size(), repository) == 0) {
      return image;
    }
  }
  return fail(ErrorCode::failed, fmt::format("row {} lists no image of {}", row.id, repository),
              "add it to the row's images in manifests/matrix.yaml");
}

} // namespace

Step apply_step(transport::Fleet& fleet, std::string name, std::string remote_path, std::optional<std::string> content)
{
  const std::string path = text::shell_quote(remote_path);
  std::string check;
  if (content) {
    check = fmt::format("[ -f {0} ] && [ \"$(sha256sum < {0} | cut -d' ' -f1)\" = {1} ] || exit 1\n", path, sha256_hex(*content));
  }
  check += fmt::format("{} diff --server-side --force-conflicts -f {} >/dev/null 2>&1 || exit 1\nexit 0\n", kubectl(), path);
  Step s;
  s.name = name;
  s.digest = sha256_hex(remote_path + "\n" + content.value_or(""));
  auto check_cmd = [check, name] { return read_only(fmt::format("check that {} is applied as written", name), check); };
  // Right after an apply, the controllers' first writes (a Deployment's revision annotation, an
  // operator's status) can land between the live read and the dry run of `kubectl diff`, which then
  // shows a change nobody asked for: the verify asks again, up to 10 times a second apart.
  auto verify_cmd = [check, name] {
    auto c = read_only(fmt::format("check that {} is applied as written (10 tries, 1 s apart, while the controllers settle)", name),
                       fmt::format("i=0\nwhile [ $i -lt 10 ]; do\n  ( {} ) && exit 0\n  i=$((i + 1)); sleep 1\ndone\nexit 1\n", check));
    c.deadline = std::chrono::seconds(120);
    return c;
  };
  s.check = [&fleet, check_cmd](size_t h) { return converged(fleet, h, check_cmd()); };
  s.apply = [&fleet, remote_path, path, content, name](size_t h) -> Status {
    if (content) {
      const std::string dir = std::filesystem::path(remote_path).parent_path().string();
      TRY(fleet.run(h, mutating(fmt::format("create {} (0700)", dir), fmt::format("mkdir -p {0} && chmod 0700 {0}", text::shell_quote(dir)))));
      TRY(fleet.upload_bytes(h, *content, remote_path, 0600, transport::Privilege::root));
    }
    auto c = mutating(fmt::format("apply {}", name), fmt::format("{} apply --server-side --force-conflicts -f {}", kubectl(), path));
    c.deadline = std::chrono::seconds(300);
    TRY(fleet.run(h, c));
    return {};
  };
  s.verify = [&fleet, verify_cmd, name](size_t h) -> Status {
    TRY_ASSIGN(const bool ok, converged(fleet, h, verify_cmd()));
    return ok ? Status{} : fail(ErrorCode::failed, fmt::format("{} was applied, but kubectl diff still finds changes", name));
  };
  return s;
}

Phase kubeconfig_phase(transport::Fleet& fleet, size_t first_control_plane, std::filesystem::path local)
{
  Phase p;
  p.name = "kubeconfig";
  p.summary = fmt::format("the cluster administrator's kubeconfig to {} (0600)", local.string());
  p.hosts = {first_control_plane};
  p.deadline = std::chrono::seconds(120);
  p.steps = [&fleet, local](size_t) {
    Step s;
    s.name = "admin-conf";
    s.digest = sha256_hex(local.string());
    // Converged when the local copy has the host's content (compared by hash) and mode 0600.
    auto same = [&fleet, local](size_t h) -> Result<bool> {
      TRY_ASSIGN(const auto r, fleet.exec(h, read_only("hash admin.conf", fmt::format("[ -f {0} ] || exit 1\nsha256sum < {0}", k_admin_kubeconfig))));
      if (!r.ok()) {
        return false;
      }
      std::error_code ec;
      if (!std::filesystem::exists(local, ec) ||
          (std::filesystem::status(local, ec).permissions() & std::filesystem::perms::all) != (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write)) {
        return false;
      }
      TRY_ASSIGN(const std::string have, sha256_file_hex(local));
      return text::split(std::string(text::trim(r.out)), ' ').front() == have;
    };
    s.check = same;
    s.apply = [&fleet, local](size_t h) -> Status {
      auto c = read_only("read admin.conf (it holds the administrator's key: never logged)", fmt::format("cat {}", k_admin_kubeconfig));
      c.sensitive = transport::Sensitive::yes;
      if (fleet.dry_run()) {
        // A plan writes nothing on the operator machine either.
        auto planned = mutating(fmt::format("copy {} to {} (0600)", k_admin_kubeconfig, local.string()), "");
        planned.sensitive = transport::Sensitive::yes;
        TRY(fleet.exec(h, planned));
        return {};
      }
      TRY_ASSIGN(const auto r, fleet.run(h, c));
      TRY(fs::write_file_atomic(local, r.out, 0600));
      return {};
    };
    s.verify = [same](size_t h) -> Status {
      TRY_ASSIGN(const bool ok, same(h));
      return ok ? Status{} : fail(ErrorCode::failed, "the fetched kubeconfig differs from the control plane's admin.conf");
    };
    return std::vector<Step>{s};
  };
  return p;
}

Result<Phase> cni_phase(transport::Fleet& fleet, const config::Cluster& cluster, const config::Effective& effective, const RuntimeInputs& in)
{
  const size_t nodes = cluster.hosts.size();
  const std::string k = kubectl();
  const std::string all_ready = fmt::format(
    "[ \"$({k} get nodes --no-headers 2>/dev/null | awk '$2 == \"Ready\"' | wc -l)\" -eq {n} ]", fmt::arg("k", k), fmt::arg("n", nodes));
  std::vector<Step> steps;
  Phase p;
  p.name = "cni";
  p.hosts = {in.first_control_plane};
  p.deadline = std::chrono::seconds(900);
  steps.push_back(gate_step(fleet, *in.row, compat::Stage::cni));
  if (effective.cni == config::Cni::calico) {
    TRY_ASSIGN(const std::string crds, bundle_file_on_host(in, "calico-crds"));
    TRY_ASSIGN(const std::string op, bundle_file_on_host(in, "calico-operator"));
    TRY_ASSIGN(const std::string tmpl, assets::read("manifests/cni/calico-installation.yaml"));
    const std::string installation = text::fill(tmpl, {{"@MTU@", std::to_string(effective.cni_mtu)},
                                                 {"@POD_CIDR@", cluster.network.pod_cidr},
                                                 {"@ENCAPSULATION@", effective.encapsulation}});
    p.summary = fmt::format("Calico through its operator: pod CIDR {}, {} encapsulation, MTU {}; then {} node{} Ready",
                            cluster.network.pod_cidr, effective.encapsulation, effective.cni_mtu, nodes, nodes == 1 ? "" : "s");
    steps.push_back(apply_step(fleet, "calico-crds", crds, std::nullopt));
    steps.push_back(apply_step(fleet, "tigera-operator", op, std::nullopt));
    steps.push_back(wait_step(fleet, "operator-ready", "the Tigera operator's rollout (deployment tigera-operator in namespace tigera-operator)",
                              fmt::format("{} -n tigera-operator rollout status deployment/tigera-operator --timeout=5s >/dev/null 2>&1", k),
                              std::chrono::seconds(300)));
    steps.push_back(wait_step(fleet, "operator-crds", "the operator's CRDs to be established (installations.operator.tigera.io)",
                              fmt::format("{} wait --for=condition=Established --timeout=5s crd/installations.operator.tigera.io "
                                          "crd/apiservers.operator.tigera.io >/dev/null 2>&1", k),
                              std::chrono::seconds(300)));
    steps.push_back(apply_step(fleet, "calico-installation", std::string(k_manifest_dir) + "/calico-installation.yaml", installation));
  } else {
    TRY_ASSIGN(const std::string upstream, bundle_file_on_host(in, "flannel-manifest"));
    TRY_ASSIGN(const std::string kustomization, assets::read("manifests/cni/flannel/kustomization.yaml"));
    TRY_ASSIGN(const std::string tmpl, assets::read("manifests/cni/flannel/net-conf.yaml"));
    const std::string patch = text::fill(tmpl, {{"@POD_CIDR@", cluster.network.pod_cidr}, {"@BACKEND@", effective.encapsulation}});
    p.summary = fmt::format("Flannel with mlplat's overlay: pod CIDR {}, backend {}; then {} node{} Ready", cluster.network.pod_cidr,
                            effective.encapsulation, nodes, nodes == 1 ? "" : "s");
    const std::string dir = std::string(k_manifest_dir) + "/flannel";
    // The overlay: kustomization and patch from mlplat, the upstream manifest copied from the bundle.
    steps.push_back(files_step(fleet, "flannel-overlay", {{dir + "/kustomization.yaml", kustomization, 0600}, {dir + "/net-conf.yaml", patch, 0600}},
                               fmt::format("chmod 0700 {0} && cp {1} {0}/kube-flannel.yml && chmod 0600 {0}/kube-flannel.yml", dir, upstream)));
    const std::string render = fmt::format("{} kustomize {}", k, dir);
    steps.push_back(script_step(fleet, "flannel", sha256_hex(patch + kustomization),
                             "check that Flannel is applied as the overlay renders it",
                             fmt::format("{} | {} diff --server-side --force-conflicts -f - >/dev/null 2>&1 || exit 1\nexit 0\n", render, k),
                             "apply Flannel (kubectl kustomize of the overlay)",
                             fmt::format("{} > {d}/rendered.yaml\n{} apply --server-side --force-conflicts -f {d}/rendered.yaml\n",
                                         render, k, fmt::arg("d", dir))));
  }
  steps.push_back(wait_step(fleet, "nodes-ready", fmt::format("all {} node{} to be Ready (kubectl get nodes)", nodes, nodes == 1 ? "" : "s"),
                            all_ready, std::chrono::seconds(600)));
  p.steps = [steps](size_t) { return steps; };
  return p;
}

Result<Phase> storage_phase(transport::Fleet& fleet, const config::Effective& effective, const RuntimeInputs& in)
{
  TRY_ASSIGN(const std::string provisioner, image_of(*in.row, "openebs/provisioner-localpv"));
  TRY_ASSIGN(const std::string helper, image_of(*in.row, "openebs/linux-utils"));
  TRY_ASSIGN(const std::string openebs_tmpl, assets::read("manifests/storage/openebs-hostpath.yaml"));
  TRY_ASSIGN(const std::string probe_tmpl, assets::read("manifests/storage/probe.yaml"));
  const std::vector<std::pair<std::string, std::string>> values{
    {"@PROVISIONER_IMAGE@", provisioner}, {"@HELPER_IMAGE@", helper}, {"@BASE_PATH@", effective.base_path}};
  const std::string k = kubectl();
  Phase p;
  p.name = "storage";
  p.summary = fmt::format("OpenEBS LocalPV hostpath at {} as the default StorageClass, proven by a volume", effective.base_path);
  p.hosts = {in.first_control_plane};
  p.deadline = std::chrono::seconds(900);
  std::vector<Step> steps;
  steps.push_back(gate_step(fleet, *in.row, compat::Stage::storage));
  steps.push_back(apply_step(fleet, "openebs-hostpath", std::string(k_manifest_dir) + "/openebs-hostpath.yaml", text::fill(openebs_tmpl, values)));
  steps.push_back(wait_step(fleet, "provisioner-ready", "the provisioner's rollout (deployment openebs-localpv-provisioner in namespace openebs)",
                            fmt::format("{} -n openebs rollout status deployment/openebs-localpv-provisioner --timeout=5s >/dev/null 2>&1", k),
                            std::chrono::seconds(300)));
  // The only default: no other StorageClass may carry the default annotation.
  steps.push_back(script_step(
    fleet, "only-default", "openebs-hostpath", "check that openebs-hostpath is the only default StorageClass",
    fmt::format("[ \"$({} get storageclass -o jsonpath='{{range .items[*]}}{{.metadata.name}}={{.metadata.annotations.storageclass\\.kubernetes\\.io/is-default-class}}{{\"\\n\"}}{{end}}' "
                "| grep '=true$')\" = openebs-hostpath=true ] || exit 1\nexit 0\n", k),
    "make every other StorageClass not default",
    fmt::format("for sc in $({0} get storageclass -o jsonpath='{{range .items[*]}}{{.metadata.name}}={{.metadata.annotations.storageclass\\.kubernetes\\.io/is-default-class}}{{\"\\n\"}}{{end}}' "
                "| grep '=true$' | cut -d= -f1 | grep -vx openebs-hostpath); do\n"
                "  {0} annotate storageclass \"$sc\" storageclass.kubernetes.io/is-default-class=false --overwrite\ndone\n", k)));
  const std::string phase_of = fmt::format("{} -n mlplat-probe get pod storage-probe -o jsonpath='{{.status.phase}}' 2>/dev/null", k);
  steps.push_back(apply_step(fleet, "volume-probe", std::string(k_manifest_dir) + "/storage-probe.yaml", text::fill(probe_tmpl, values)));
  // A probe that does not succeed is reported with what the pod said.
  steps.push_back(wait_step(fleet, "volume-written",
                            "the storage probe (pod storage-probe in namespace mlplat-probe) to write its volume as a non-root user",
                            fmt::format("[ \"$({})\" = Succeeded ]", phase_of), std::chrono::seconds(300),
                            {"pod phase and log",
                             fmt::format("{}; echo; {} -n mlplat-probe logs storage-probe 2>&1 | tail -n 5", phase_of, k),
                             "check the base path on the node (free space, mounted, not read-only) and the provisioner's log: "
                             "kubectl -n openebs logs deployment/openebs-localpv-provisioner"}));
  p.steps = [steps](size_t) { return steps; };
  return p;
}

Phase cleanup_phase(transport::Fleet& fleet, size_t first_control_plane)
{
  Phase p;
  p.name = "cleanup";
  p.summary = "bootstrap tokens and the kubeadm-certs Secret removed";
  p.hosts = {first_control_plane};
  p.deadline = std::chrono::seconds(120);
  const std::string k = kubectl();
  std::vector<Step> steps;
  // `kubeadm token list` prints whole tokens: its output is never logged, only counted.
  steps.push_back(script_step(fleet, "join-tokens", "tokens", "check that no bootstrap token is left",
                           "[ \"$(kubeadm token list 2>/dev/null | awk 'NR > 1' | wc -l)\" -eq 0 ] || exit 1\nexit 0\n",
                           "delete every bootstrap token",
                           "kubeadm token list | awk 'NR > 1 {print $1}' | while read -r t; do kubeadm token delete \"${t%%.*}\" >/dev/null; done\n",
                           ScriptOptions{transport::Sensitive::yes}));
  steps.push_back(script_step(fleet, "kubeadm-certs", "kubeadm-certs", "check that the kubeadm-certs Secret is gone",
                              fmt::format("{} -n kube-system get secret kubeadm-certs >/dev/null 2>&1 && exit 1\nexit 0\n", k),
                              "delete the kubeadm-certs Secret (the control-plane certificates, encrypted)",
                              fmt::format("{} -n kube-system delete secret kubeadm-certs --ignore-not-found", k)));
  p.steps = [steps](size_t) { return steps; };
  return p;
}

} // namespace mlplat::install
