#include "facts/facts.hpp"

#include "assets/assets.hpp"
#include "util/text.hpp"

namespace mlplat::facts {

std::string HostFacts::get(const std::string& key) const
{
  const auto it = values.find(key);
  return it == values.end() ? std::string() : it->second;
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
    facts.values[line.substr(0, eq)] = std::string(text::trim(line.substr(eq + 1)));
  }
  return facts;
}

std::vector<Result<HostFacts>> gather(transport::Fleet& fleet)
{
  const auto probe = assets::read("checks/facts.sh");
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
