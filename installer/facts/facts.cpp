#include "facts/facts.hpp"

#include "assets/assets.hpp"
#include "util/text.hpp"

namespace mlplat::facts {

std::string HostFacts::get(const std::string& key) const
{
  const auto it = values.find(key);
  return it == values.end() || it->second.empty() ? std::string() : it->second.front();
}

const std::vector<std::string>& HostFacts::all(const std::string& key) const
{
  static const std::vector<std::string> none;
  const auto it = values.find(key);
  return it == values.end() ? none : it->second;
}

Result<std::string> probe_script(const ProbeInputs& inputs)
{
  TRY_ASSIGN(const std::string body, assets::read("checks/facts.sh"));
  return "modules=" + text::shell_quote(text::join(inputs.modules, " ")) + "\n" +
         "disk_paths=" + text::shell_quote(text::join(inputs.disk_paths, " ")) + "\n" +
         "profile=" + text::shell_quote(inputs.profile) + "\n" + body;
}

HostFacts parse(const std::string& host, const std::string& probe_output)
{
  HostFacts facts;
  facts.host = host;
  for (const auto& line : text::split(probe_output, '\n')) {
    const auto eq = line.find('=');
    if (eq == std::string::npos || eq == 0) {
      continue;
    }
    facts.values[line.substr(0, eq)].emplace_back(text::trim(line.substr(eq + 1)));
  }
  return facts;
}

std::vector<Result<HostFacts>> gather(transport::Fleet& fleet, const ProbeInputs& inputs)
{
  const auto probe = probe_script(inputs);
  return fleet.for_each<HostFacts>([&](size_t i) -> Result<HostFacts> {
    TRY(probe);
    transport::Command cmd;
    cmd.script = *probe;
    cmd.description = "gather host facts";
    cmd.deadline = std::chrono::seconds(20);
    TRY_ASSIGN(auto result, fleet.run(i, cmd));
    return parse(fleet.endpoint(i).name, result.out);
  });
}

} // namespace mlplat::facts
