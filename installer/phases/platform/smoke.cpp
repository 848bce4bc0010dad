#include "phases/phases.hpp"

#include "phases/common.hpp"
#include "render/platform.hpp"
#include "util/sha256.hpp"
#include "util/text.hpp"
#include "fetch/probe.hpp"
#include "util/interrupt.hpp"
#include "util/net.hpp"

#include <fmt/core.h>

#include <thread>

namespace mlplat::phases {

using namespace workflow;

namespace {

using render::k_gateway_namespace;
using render::k_tls_secret;

namespace sfs = std::filesystem;
using render::gateway_request;
using render::ui_url;

Phase smoke_phase(transport::Fleet& fleet, const render::PlatformRender& render, const tls::IngressCertificate& cert, const Context& in,
                  std::chrono::seconds deadline = std::chrono::seconds(180))
{
  // One round of probes; the error says which failed and how.
  auto probe = [&fleet, render, ca = cert.ca_file](size_t h) -> Status {
    std::string address = render.ingress_address;
    if (address.empty()) {
      TRY_ASSIGN(const auto r, fleet.exec(h, read_only("read the gateway's load balancer address",
                                                       fmt::format("{} -n {} get service istio-ingressgateway -o jsonpath='{{.status.loadBalancer.ingress[0].ip}}'",
                                                                   kubectl(), k_gateway_namespace))));
      address = std::string(text::trim(r.out));
      if (!address.empty() && !net::parse_ip(address)) { // a host's output: only an address goes into the probe
        return fail(ErrorCode::failed, fmt::format("the gateway's Service reports '{}' as its address, which is not an IP address", address));
      }
      if (address.empty()) {
        return fail(ErrorCode::failed, "the gateway's Service has no load balancer address yet",
                    "check the site's load balancer (e.g. MetalLB's address pool): kubectl -n istio-system get service istio-ingressgateway");
      }
    }
    if (!ca.empty() && !sfs::exists(ca)) {
      return fail(ErrorCode::failed, fmt::format("the CA file {} does not exist yet", ca.string()));
    }
    auto q = gateway_request(render, address, ca);
    TRY_ASSIGN(const auto ui, fetch::get(q));
    if (ui.status != 200 || ui.body.find("Kubeflow Pipelines") == std::string::npos) {
      return fail(ErrorCode::failed, fmt::format("GET {} (at {}) answered {} without the Pipelines UI", q.url, address, ui.status));
    }
    q.url = ui_url(render) + "apis/v2beta1/healthz";
    TRY_ASSIGN(const auto api, fetch::get(q));
    if (api.status != 200 || api.body.find("\"tag_name\"") == std::string::npos) {
      return fail(ErrorCode::failed, fmt::format("GET {} (at {}) answered {} without the Pipelines API's health", q.url, address, api.status));
    }
    q.url = render.http_port == 80 ? fmt::format("http://{}/", render.domain) : fmt::format("http://{}:{}/", render.domain, render.http_port);
    TRY_ASSIGN(const auto plain, fetch::get(q));
    if ((plain.status != 301 && plain.status != 302 && plain.status != 308) || plain.location.rfind("https://", 0) != 0) {
      return fail(ErrorCode::failed, fmt::format("GET {} (at {}) answered {} instead of a redirect to HTTPS", q.url, address, plain.status));
    }
    return {};
  };
  Phase p;
  p.name = "smoke";
  p.summary = fmt::format("HTTPS through the gateway to the Pipelines UI and API ({}), verified against {}", ui_url(render),
                          cert.ca_file.empty() ? "the system's trust store" : cert.ca_file.string());
  p.hosts = {in.first_control_plane};
  p.deadline = deadline + std::chrono::seconds(30);
  Step s;
  s.name = "https";
  s.digest = sha256_hex(ui_url(render) + cert.serial_hex);
  s.check = [probe](size_t h) -> Result<bool> { return probe(h).has_value(); };
  s.apply = [&fleet, probe, deadline, url = ui_url(render)](size_t h) -> Status {
    if (fleet.dry_run()) {
      return {};
    }
    const auto end = std::chrono::steady_clock::now() + deadline;
    Status last;
    do {
      last = probe(h);
      if (last) {
        return {};
      }
      if (!interrupt::sleep_for(std::chrono::seconds(2))) {
        return fail(ErrorCode::interrupted, fmt::format("interrupted while waiting for {} through the gateway", url));
      }
    } while (std::chrono::steady_clock::now() < end);
    Error e = last.error();
    e.message = fmt::format("waited {} s for {} through the gateway: {}", deadline.count(), url, e.message);
    e.fix = "check the gateway: kubectl -n istio-system get pods,svc,gateway; kubectl -n istio-system logs deployment/istio-ingressgateway; "
            "and that this machine reaches the ingress address (firewall); skip this check with --skip smoke";
    return tl::unexpected(e);
  };
  s.verify = [probe](size_t h) { return probe(h); };
  p.steps = [s](size_t) { return std::vector<Step>{s}; };
  return p;
}

} // namespace

PhaseSpec smoke()
{
  PhaseSpec spec;
  spec.path = "platform/smoke";
  spec.summary = "HTTPS through the gateway to the Pipelines UI and API, verified against the CA";
  spec.skip_if = platform_left_out;
  spec.build = [](Context& ctx) -> Result<Phase> {
    if (!ctx.render || !ctx.cert) {
      return fail(ErrorCode::internal, "platform/smoke was built before the platform was rendered and the ingress certificate settled");
    }
    return smoke_phase(ctx.fleet, *ctx.render, *ctx.cert, ctx);
  };
  return spec;
}

} // namespace mlplat::phases
