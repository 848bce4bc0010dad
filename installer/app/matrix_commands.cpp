// `mlplat matrix` and `mlplat matrix check`: the compatibility matrix shown, and a cluster file judged
// against it before any connection.
#include "app/commands.hpp"

#include "compat/gate.hpp"
#include "compat/matrix.hpp"
#include "config/load.hpp"
#include "util/log.hpp"
#include "util/text.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <iostream>

namespace mlplat::app {

namespace {

nlohmann::json row_json(const compat::Row& row)
{
  nlohmann::json components = nlohmann::json::object();
  for (const auto& c : row.components) {
    nlohmann::json j{{"version", c.version.str()}};
    if (!c.accepts.empty()) {
      j["accepts"] = c.accepts.text;
    }
    if (!c.kubernetes.empty()) {
      j["kubernetes"] = c.kubernetes.text;
    }
    components[c.name] = j;
  }
  nlohmann::json artifacts = nlohmann::json::array();
  for (const auto& a : row.artifacts) {
    nlohmann::json j{{"name", a.name}, {"url", a.url}, {"verification", compat::to_string(a.verification)}};
    if (!a.sha256.empty()) {
      j["sha256"] = a.sha256;
    }
    if (!a.checksum_url.empty()) {
      j["checksumUrl"] = a.checksum_url;
    }
    if (!a.unpinned_reason.empty()) {
      j["unpinned"] = a.unpinned_reason;
    }
    artifacts.push_back(j);
  }
  return {{"id", row.id},
          {"status", compat::to_string(row.status)},
          {"kubernetes", row.kubernetes.str()},
          {"endOfLife", row.end_of_life},
          {"kubeadmApi", row.kubeadm_api},
          {"containerdConfigVersion", row.containerd_config_version},
          {"components", components},
          {"artifacts", artifacts},
          {"images", row.images}};
}

nlohmann::json finding_json(const compat::Finding& f)
{
  nlohmann::json j{{"rule", f.rule}, {"row", f.row}, {"subject", f.subject}, {"level", compat::to_string(f.level)},
                   {"reason", f.reason}};
  if (!f.supported.empty()) {
    j["supportedInstead"] = f.supported;
  }
  return j;
}

} // namespace

int cmd_matrix_show(const GlobalOptions& global, const MatrixOptions& options)
{
  auto matrix = compat::load_active_matrix();
  if (!matrix) {
    return report_error(global, matrix.error());
  }
  std::vector<const compat::Row*> rows;
  for (const auto& r : matrix->rows) {
    if (options.row.empty() || r.id == options.row) {
      rows.push_back(&r);
    }
  }
  if (rows.empty()) {
    std::vector<std::string> ids;
    for (const auto& r : matrix->rows) {
      ids.push_back(r.id);
    }
    Error e;
    e.code = ErrorCode::usage;
    e.message = fmt::format("the matrix has no row '{}'", options.row);
    e.fix = "rows: " + text::join(ids, ", ");
    return report_error(global, e);
  }
  if (global.output == Output::json) {
    nlohmann::json out{{"source", matrix->source},   {"verified", matrix->verified}, {"defaultRow", matrix->default_row},
                       {"arch", matrix->arch},       {"kernelMinimum", matrix->kernel_minimum},
                       {"supportedOS", matrix->supported_os}, {"rows", nlohmann::json::array()}};
    for (const auto* r : rows) {
      out["rows"].push_back(row_json(*r));
    }
    std::cout << out.dump(2) << "\n";
    return k_exit_ok;
  }
  // One column per row, one line per component: the way people compare versions.
  std::cout << fmt::format("compatibility matrix {} (verified {}; arch {})\n\n", matrix->source, matrix->verified, matrix->arch);
  std::string line = fmt::format("{:<16}", "");
  for (const auto* r : rows) {
    line += fmt::format("{:<20}", r->id);
  }
  std::cout << line << "\n";
  auto print = [&](const std::string& label, auto value_of) {
    std::string l = fmt::format("{:<16}", label);
    for (const auto* r : rows) {
      l += fmt::format("{:<20}", value_of(*r));
    }
    std::cout << l << "\n";
  };
  print("status", [](const compat::Row& r) { return compat::to_string(r.status); });
  print("kubernetes", [](const compat::Row& r) { return r.kubernetes.str(); });
  print("end of life", [](const compat::Row& r) { return r.end_of_life; });
  for (const auto& name : compat::component_names()) {
    print(name, [&](const compat::Row& r) {
      const auto* c = r.component(name);
      return c == nullptr ? std::string("-") : c->version.str();
    });
  }
  std::cout << fmt::format("\nhost OS: {}; kernel >= {}\n", text::join(matrix->supported_os, ", "), matrix->kernel_minimum);
  for (const auto* r : rows) {
    size_t pinned = 0;
    size_t upstream = 0;
    size_t unpinned = 0;
    for (const auto& a : r->artifacts) {
      (a.verification == compat::Verification::pinned ? pinned
       : a.verification == compat::Verification::upstream_checksum ? upstream
                                                                  : unpinned)++;
    }
    std::cout << fmt::format("{}: {} artifacts ({} pinned here, {} against the upstream checksum file, {} unpinned), {} images\n",
                             r->id, r->artifacts.size(), pinned, upstream, unpinned, r->images.size());
  }
  std::cout << "mlplat matrix --row ID --output json shows every URL and checksum; docs/matrix.md explains the rows.\n";
  return k_exit_ok;
}

int cmd_matrix_check(const GlobalOptions& global, const MatrixOptions& options)
{
  auto matrix = compat::load_active_matrix();
  if (!matrix) {
    return report_error(global, matrix.error());
  }
  // Judging versions connects to nothing: the SSH key files need not exist here.
  auto cluster = config::load_file(global.config, config::KeyFiles::skip);
  if (!cluster) {
    return report_error(global, cluster.error());
  }
  const auto result = compat::check_config(*matrix, *cluster, compat::GateOptions{options.allow_preview});
  if (global.output == Output::json) {
    nlohmann::json findings = nlohmann::json::array();
    for (const auto& f : result.findings) {
      findings.push_back(finding_json(f));
    }
    std::cout << nlohmann::json{{"gate", result.gate},
                                {"row", result.row != nullptr ? result.row->id : ""},
                                {"profile", cluster->profile},
                                {"passed", result.passed()},
                                {"findings", findings}}
                   .dump(2)
              << "\n";
  } else {
    std::cout << fmt::format("{} (profile {}) against {}: row {}\n", cluster->source_file, cluster->profile, matrix->source,
                             result.row != nullptr ? result.row->id : "none");
    std::cout << compat::render(result, true);
  }
  if (!result.passed()) {
    log::write(log::Level::error, {}, result.to_status().error().render());
    return k_exit_preflight;
  }
  return k_exit_ok;
}

} // namespace mlplat::app
