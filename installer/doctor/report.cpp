#include "doctor/report.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>

namespace mlplat::doctor {

namespace {

int rank(const std::string& status)
{
  if (status == "error") {
    return 0;
  }
  if (status == "warning") {
    return 1;
  }
  if (status == "fixed-by-install") {
    return 2;
  }
  return status == "info" ? 3 : 4;
}

} // namespace

std::string render_text(const Report& report, Colour colour)
{
  const bool c = colour == Colour::yes;
  auto paint = [c](const std::string& s, const char* code) { return c ? fmt::format("\033[{}m{}\033[0m", code, s) : s; };
  std::string out = fmt::format("mlplat doctor: cluster {}, {} host{}, profile {}, Kubernetes {}\n", report.cluster,
                                report.hosts.size(), report.hosts.size() == 1 ? "" : "s", report.profile, report.kubernetes);
  std::vector<std::string> groups;
  for (const auto& h : report.hosts) {
    groups.push_back(h.name);
  }
  groups.emplace_back(); // cluster-wide
  for (const auto& group : groups) {
    std::vector<const Finding*> shown;
    size_t passed = 0;
    size_t skipped = 0;
    std::string skip_reason;
    for (const auto& f : report.findings) {
      if (f.host != group) {
        continue;
      }
      if (f.status == "pass") {
        ++passed;
      } else if (f.status == "skip") {
        ++skipped;
        skip_reason = f.observed;
      } else {
        shown.push_back(&f);
      }
    }
    if (shown.empty() && passed == 0 && skipped == 0) {
      continue;
    }
    std::stable_sort(shown.begin(), shown.end(), [](const Finding* a, const Finding* b) { return rank(a->status) < rank(b->status); });
    std::string title = group.empty() ? std::string("cluster") : group;
    for (const auto& h : report.hosts) {
      if (h.name == group) {
        title += fmt::format(" ({}, {})", h.address, config::to_string(h.role));
      }
    }
    if (shown.empty()) {
      out += fmt::format("{}: {} check{} passed{}\n", title, passed, passed == 1 ? "" : "s",
                         skipped > 0 ? fmt::format(", {} not run ({})", skipped, skip_reason) : "");
      continue;
    }
    out += fmt::format("{}\n", c ? paint(title, "1") : title);
    for (const auto* f : shown) {
      std::string label = f->status == "error"              ? "ERROR"
                          : f->status == "warning"          ? "WARNING"
                          : f->status == "fixed-by-install" ? "FIXED-BY-INSTALL"
                                                            : "INFO";
      if (f->ignored) {
        label = "IGNORED";
      }
      const char* code = f->status == "error" ? "31;1" : f->status == "warning" ? "33" : f->status == "fixed-by-install" ? "32" : "36";
      out += fmt::format("  {}  {:<7}  {}: {}\n", paint(fmt::format("{:<16}", label), code), f->id, f->title, f->observed);
      out += fmt::format("  {:<16}  {:<7}  {}: {}\n", "", "", f->status == "fixed-by-install" ? "install's prepare does this" : "fix", f->fix);
    }
    if (passed > 0 || skipped > 0) {
      out += fmt::format("  {} passed{}\n", passed, skipped > 0 ? fmt::format(", {} not run ({})", skipped, skip_reason) : "");
    }
  }
  const size_t errors = report.count("error");
  out += fmt::format("\n{} error{}, {} warning{}, {} fixed by install, {} passed, {} not run, {} ignored. ", errors,
                     errors == 1 ? "" : "s", report.count("warning"), report.count("warning") == 1 ? "" : "s",
                     report.count("fixed-by-install"), report.count("pass"), report.count("skip"), report.ignored());
  out += errors > 0 ? paint("Install is blocked until every error is fixed (or ignored with --ignore ID).", c ? "31;1" : "0")
                    : std::string("Install may proceed.");
  out += "\n";
  return out;
}

std::string render_json(const Report& report)
{
  nlohmann::json findings = nlohmann::json::array();
  for (const auto& f : report.findings) {
    findings.push_back({{"id", f.id},
                        {"title", f.title},
                        {"host", f.host.empty() ? nlohmann::json(nullptr) : nlohmann::json(f.host)},
                        {"status", f.status},
                        {"observed", f.observed},
                        {"fix", f.fix.empty() ? nlohmann::json(nullptr) : nlohmann::json(f.fix)},
                        {"ignored", f.ignored}});
  }
  nlohmann::json hosts = nlohmann::json::array();
  for (const auto& h : report.hosts) {
    hosts.push_back({{"name", h.name}, {"address", h.address}, {"role", config::to_string(h.role)}});
  }
  const nlohmann::json j{{"apiVersion", "mlplat.dev/v1alpha1"},
                         {"kind", "DoctorReport"},
                         {"cluster", report.cluster},
                         {"profile", report.profile},
                         {"kubernetes", report.kubernetes},
                         {"hosts", hosts},
                         {"summary",
                          {{"errors", report.count("error")},
                           {"warnings", report.count("warning")},
                           {"info", report.count("info")},
                           {"fixedByInstall", report.count("fixed-by-install")},
                           {"passed", report.count("pass")},
                           {"skipped", report.count("skip")},
                           {"ignored", report.ignored()},
                           {"installBlocked", report.has_errors()}}},
                         {"findings", findings}};
  return j.dump(2) + "\n";
}

} // namespace mlplat::doctor
