#include "doctor/catalogue.hpp"

#include "assets/assets.hpp"
#include "doctor/probes.hpp"
#include "util/text.hpp"
#include "yamlio/reader.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <regex>
#include <set>

namespace mlplat::doctor {

using yamlio::MapReader;
using yamlio::Need;

std::string to_string(Severity severity)
{
  switch (severity) {
  case Severity::error: return "error";
  case Severity::warning: return "warning";
  case Severity::info: return "info";
  }
  return "?";
}

double Params::number(const std::string& key) const
{
  return std::stod(values.at(key).at(0));
}

std::string Params::text(const std::string& key) const
{
  return values.at(key).at(0);
}

const std::vector<std::string>& Params::list(const std::string& key) const
{
  return values.at(key);
}

const std::vector<std::string>& doctor_commands()
{
  static const std::vector<std::string> names{"doctor", "install", "plan"};
  return names;
}

bool CheckSpec::runs_for(const std::string& command) const
{
  return command.empty() || command == "doctor" || commands.empty() ||
         std::find(commands.begin(), commands.end(), command) != commands.end();
}

bool CheckSpec::applies(config::Role role, const std::string& profile) const
{
  const bool role_ok = roles.empty() || std::find(roles.begin(), roles.end(), role) != roles.end();
  const bool profile_ok = profiles.empty() || std::find(profiles.begin(), profiles.end(), profile) != profiles.end();
  return role_ok && profile_ok;
}

const CheckSpec* Catalogue::find(const std::string& id) const
{
  for (const auto& c : checks) {
    if (c.id == id) {
      return &c;
    }
  }
  return nullptr;
}

std::vector<std::string> Catalogue::param_values(const std::string& probe, const std::string& key) const
{
  std::vector<std::string> out;
  for (const auto& c : checks) {
    if (c.probe == probe) {
      if (auto it = c.params.values.find(key); it != c.params.values.end()) {
        for (const auto& v : it->second) {
          if (std::find(out.begin(), out.end(), v) == out.end()) {
            out.push_back(v);
          }
        }
      }
    }
  }
  return out;
}

Result<Catalogue> load_catalogue(const std::string& text, const std::string& file_name)
{
  yamlio::Problems problems{file_name, {}};
  yamlio::Positions positions;
  Catalogue catalogue;
  const YAML::Node root = yamlio::parse(text, problems, "a catalogue needs apiVersion, kind and checks");
  if (!root.IsDefined() || root.IsNull()) {
    TRY(problems.to_status());
  }
  MapReader top(problems, positions, root, "");
  yamlio::read_header(top, problems, positions, config::k_api_version, "CheckCatalogue", "a check catalogue");
  static const std::regex id_format("[A-Z]{2,4}-[0-9]{3}");
  std::set<std::string> ids;
  top.list(
    "checks",
    [&](const YAML::Node& node, const std::string& path) {
      MapReader r(problems, positions, node, path);
      if (!r.valid()) {
        return;
      }
      CheckSpec spec;
      spec.where = positions[path];
      if (r.str("id", spec.id, Need::required)) {
        if (!std::regex_match(spec.id, id_format)) {
          problems.add(positions[path + ".id"], fmt::format("{}.id: '{}' is not an id like OS-007", path, spec.id),
                       "use 2-4 capital letters, '-', three digits");
        } else if (!ids.insert(spec.id).second) {
          problems.add(positions[path + ".id"], fmt::format("{}.id: '{}' is used twice", path, spec.id),
                       "ids are unique and never reused");
        }
      }
      r.str("title", spec.title, Need::required);
      r.str("fix", spec.fix, Need::required);
      r.choice<Severity>("severity", spec.severity,
                         {{"error", Severity::error}, {"warning", Severity::warning}, {"info", Severity::info}},
                         Need::required);
      if (r.str("fixedBy", spec.fixed_by) && spec.fixed_by != "prepare") {
        problems.add(positions[path + ".fixedBy"], fmt::format("{}.fixedBy: '{}' is not a phase that fixes host findings", path, spec.fixed_by),
                     "use prepare (install's first phase), or leave fixedBy out");
      }
      std::vector<std::string> roles;
      if (r.string_list("roles", roles)) {
        for (const auto& role : roles) {
          if (role == "control-plane") {
            spec.roles.push_back(config::Role::control_plane);
          } else if (role == "worker") {
            spec.roles.push_back(config::Role::worker);
          } else {
            problems.add(positions[path + ".roles"], fmt::format("{}.roles: '{}' is not a role", path, role),
                         "use control-plane or worker");
          }
        }
      }
      if (r.string_list("profiles", spec.profiles)) {
        for (const auto& profile : spec.profiles) {
          if (std::find(config::profiles().begin(), config::profiles().end(), profile) == config::profiles().end()) {
            problems.add(positions[path + ".profiles"], fmt::format("{}.profiles: '{}' is not a profile", path, profile),
                         fmt::format("use {}", text::join(config::profiles(), ", ")));
          }
        }
      }
      if (r.string_list("commands", spec.commands)) {
        for (const auto& command : spec.commands) {
          if (std::find(doctor_commands().begin(), doctor_commands().end(), command) == doctor_commands().end()) {
            problems.add(positions[path + ".commands"], fmt::format("{}.commands: '{}' is not a command that runs the doctor", path, command),
                         fmt::format("use {}", text::join(doctor_commands(), ", ")));
          }
        }
      }
      const ProbeInfo* probe = nullptr;
      if (r.str("probe", spec.probe, Need::required)) {
        probe = find_probe(spec.probe);
        if (probe == nullptr) {
          const auto guess = text::did_you_mean(spec.probe, probe_names());
          problems.add(positions[path + ".probe"], fmt::format("{}.probe: no probe named '{}'", path, spec.probe),
                       guess ? fmt::format("did you mean '{}'?", *guess) : "see installer/doctor/probes.cpp for the probes");
        }
      }
      if (probe != nullptr && !spec.fixed_by.empty() && !probe->fixable) {
        problems.add(positions[path + ".fixedBy"], fmt::format("{}.fixedBy: probe '{}' never reports a finding install fixes", path, spec.probe),
                     "leave fixedBy out for this check");
      }
      // Parameters: exactly those the probe declares, of the declared kinds.
      const bool has_params = r.sub("params", [&](MapReader& pr) {
        if (probe == nullptr) {
          return;
        }
        for (const auto& p : probe->params) {
          std::vector<std::string> values;
          std::string value;
          bool ok = false;
          if (p.kind == ParamKind::list) {
            ok = pr.string_list(p.name, values, Need::required);
          } else if (pr.str(p.name, value, Need::required)) {
            ok = true;
            values = {value};
            if (p.kind == ParamKind::number) {
              try {
                (void)std::stod(value);
              } catch (const std::exception&) {
                ok = false;
                problems.add(positions[pr.path() + "." + p.name], fmt::format("{}.{}: expected a number, found '{}'", pr.path(), p.name, value));
              }
            }
          }
          if (ok) {
            spec.params.values[p.name] = std::move(values);
          }
        }
      });
      if (!has_params && probe != nullptr && !probe->params.empty()) {
        problems.add(spec.where, fmt::format("{}: probe '{}' needs params ({})", path, spec.probe, [&] {
          std::vector<std::string> names;
          for (const auto& p : probe->params) {
            names.push_back(p.name);
          }
          return text::join(names, ", ");
        }()), "add them under params:");
      }
      r.finish();
      catalogue.checks.push_back(std::move(spec));
    },
    Need::required);
  top.finish();
  TRY(problems.to_status());
  return catalogue;
}

Result<Catalogue> load_default_catalogue()
{
  TRY_ASSIGN(const std::string text, assets::read("checks/catalogue.yaml"));
  return load_catalogue(text, "checks/catalogue.yaml");
}

} // namespace mlplat::doctor
