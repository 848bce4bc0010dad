#include "phases/common.hpp"
#include "phases/phases.hpp"

#include "kube/kubeadm.hpp"
#include "kube/live.hpp"
#include "render/platform.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"

#include <fmt/core.h>
#include <openssl/evp.h>

#include <algorithm>

namespace mlplat::phases {

using namespace workflow;
using render::k_gateway_namespace;
using render::k_tls_secret;

namespace {

std::string base64(const std::string& data)
{
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), reinterpret_cast<const unsigned char*>(data.data()),
                                static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string deployments_condition(const std::string& ns, const std::vector<std::string>& names)
{
  std::vector<std::string> parts;
  for (const auto& d : names) {
    parts.push_back(fmt::format("{} -n {} rollout status deployment/{} --timeout=5s >/dev/null 2>&1", kubectl(), ns, d));
  }
  return parts.empty() ? "true" : text::join(parts, " && ");
}

} // namespace

Step gate_step(transport::Fleet& fleet, const compat::Row& row, compat::Stage stage)
{
  const std::string script = kube::live_versions_script();
  // The live versions, or nullopt when the API server does not answer (a plan before init).
  auto read = [&fleet](size_t h) { return kube::live_versions(fleet, h); };
  auto gate = [&row, stage](const compat::LiveVersions& live) -> Status {
    auto result = compat::check_live(row, stage, live);
    if (stage == compat::Stage::pipelines) {
      // kustomize runs on the operator machine (render_platform checked it); the host's is unused.
      result.findings.erase(std::remove_if(result.findings.begin(), result.findings.end(), [](const auto& f) { return f.rule == "MAT-011"; }),
                            result.findings.end());
    }
    return result.to_status();
  };
  Step s;
  s.name = "versions";
  s.digest = row.id + "/" + compat::to_string(stage);
  s.check = [read, gate](size_t h) -> Result<bool> {
    TRY_ASSIGN(const auto live, read(h));
    if (!live) {
      return false;  // no cluster to check yet: only a plan gets here
    }
    TRY(gate(*live));
    return true;
  };
  s.apply = [&fleet, read, gate, stage, script](size_t h) -> Status {
    if (fleet.dry_run()) {
      TRY(fleet.run(h, mutating(fmt::format("the matrix gate before {}, once the API server answers", compat::to_string(stage)), script)));
      return {};
    }
    TRY_ASSIGN(const auto live, read(h));
    if (!live) {
      return fail(ErrorCode::preflight_failed, "the API server's version could not be read for the matrix gate",
                  "check that the control plane is up: kubectl --kubeconfig /etc/kubernetes/admin.conf version");
    }
    return gate(*live);
  };
  return s;
}


Step deployments_step(transport::Fleet& fleet, std::string name, const std::string& ns, const std::vector<std::string>& names,
                      std::chrono::seconds deadline)
{
  std::string list;
  for (const auto& d : names) {
    list += fmt::format("{} -n {} rollout status deployment/{} --timeout=1s >/dev/null 2>&1 || printf '%s ' {}\n", kubectl(), ns, d, d);
  }
  return wait_step(fleet, std::move(name),
                   fmt::format("deployment{} {} in namespace {} to be available", names.size() == 1 ? "" : "s", text::join(names, ", "), ns),
                   deployments_condition(ns, names), deadline,
                   {"still not available", list,
                    fmt::format("look at their pods: kubectl -n {} get pods; kubectl -n {} describe deployment <name>", ns, ns)});
}

Step tls_secret_step(transport::Fleet& fleet, const tls::IngressCertificate& cert)
{
  const std::string crt64 = base64(cert.cert_pem);
  const std::string key64 = base64(cert.key_pem);
  const std::string secret = fmt::format(
    "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {}\n  namespace: {}\n  labels:\n    app.kubernetes.io/managed-by: mlplat\n"
    "type: kubernetes.io/tls\ndata:\n  tls.crt: {}\n  tls.key: {}\n",
    k_tls_secret, k_gateway_namespace, crt64, key64);
  const std::string k = kubectl();
  // Compared by hashes: the key itself is never read back.
  const std::string check = fmt::format(
    "[ \"$({k} -n {ns} get secret {s} -o jsonpath='{{.data.tls\\.crt}}' 2>/dev/null | sha256sum | cut -d' ' -f1)\" = {c} ] || exit 1\n"
    "[ \"$({k} -n {ns} get secret {s} -o jsonpath='{{.data.tls\\.key}}' 2>/dev/null | sha256sum | cut -d' ' -f1)\" = {key} ] || exit 1\n"
    "exit 0\n",
    fmt::arg("k", k), fmt::arg("ns", k_gateway_namespace), fmt::arg("s", k_tls_secret), fmt::arg("c", sha256_hex(crt64)),
    fmt::arg("key", sha256_hex(key64)));
  Step s;
  s.name = "secret";
  s.digest = sha256_hex(cert.cert_pem);
  auto check_cmd = [check] { return read_only(fmt::format("check that Secret {}/{} holds the ingress certificate", k_gateway_namespace, k_tls_secret), check); };
  s.check = [&fleet, check_cmd](size_t h) { return converged(fleet, h, check_cmd()); };
  s.apply = [&fleet, secret, k, serial = cert.serial_hex](size_t h) -> Status {
    auto c = mutating(fmt::format("apply Secret {}/{} (kubernetes.io/tls, certificate serial {}; the key goes through stdin)",
                                  k_gateway_namespace, k_tls_secret, serial),
                      fmt::format("{} apply --server-side --force-conflicts -f -", k));
    c.input = transport::input_from_string(secret);
    c.sensitive = transport::Sensitive::yes;
    TRY(fleet.run(h, c));
    return {};
  };
  s.verify = [&fleet, check_cmd](size_t h) -> Status {
    TRY_ASSIGN(const bool ok, converged(fleet, h, check_cmd()));
    return ok ? Status{} : fail(ErrorCode::failed, fmt::format("Secret {}/{} does not hold the certificate just applied", k_gateway_namespace, k_tls_secret));
  };
  return s;
}

Result<Phase> join_phase(Context& ctx, std::string name, std::string summary_format, std::vector<size_t> hosts, bool control_plane)
{
  transport::Fleet& fleet = ctx.fleet;
  const config::Cluster& cluster = ctx.cluster;
  const std::string endpoint = kube::control_plane_endpoint(cluster, ctx.first_control_plane);
  if (!ctx.join) {
    ctx.join = std::make_shared<kube::JoinMaterial>(ctx.control_plane());
  }
  Phase p;
  p.name = std::move(name);
  p.summary = fmt::format(fmt::runtime(summary_format), endpoint);
  p.hosts = std::move(hosts);
  p.deadline = std::chrono::seconds(600);
  p.steps = [&fleet, &cluster, endpoint, control_plane, material = ctx.join](size_t h) {
    return std::vector<Step>{kube::join_step(fleet, cluster, h, endpoint, control_plane, material)};
  };
  return p;
}

std::string platform_left_out(const workflow::Context& ctx)
{
  return ctx.cluster.pipelines.enabled ? std::string() : "spec.pipelines.enabled is false";
}

std::vector<std::string> target_names(const workflow::Context& ctx, bool control_planes_only)
{
  std::vector<std::string> out;
  for (size_t h : ctx.target_hosts()) {
    if (!control_planes_only || ctx.cluster.hosts[h].role == config::Role::control_plane) {
      out.push_back(ctx.cluster.hosts[h].name);
    }
  }
  return out;
}

} // namespace mlplat::phases
