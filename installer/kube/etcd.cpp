#include "kube/etcd.hpp"

#include "util/text.hpp"

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <algorithm>

namespace mlplat::kube {

namespace {

const char* const k_etcd_curl =
  "e() { curl -sS --max-time 10 --cacert /etc/kubernetes/pki/etcd/ca.crt --cert /etc/kubernetes/pki/apiserver-etcd-client.crt "
  "--key /etc/kubernetes/pki/apiserver-etcd-client.key \"$@\"; }\n";

} // namespace

std::string etcd_members_script()
{
  return std::string(k_etcd_curl) +
         "list=$(e -X POST -d '{}' https://127.0.0.1:2379/v3/cluster/member/list) || exit 2\n"
         "printf '%s\\n' \"$list\" | tr -d '\\n'; echo\n"
         // Each member's first client URL, asked for its health.
         "for u in $(printf '%s' \"$list\" | grep -o '\"clientURLs\":\\[\"[^\"]*\"' | sed 's/.*\\[\"//; s/\"$//'); do\n"
         "  if e \"$u/health\" 2>/dev/null | grep -q '\"health\":\"true\"'; then echo \"health $u true\"; else echo \"health $u false\"; fi\n"
         "done\n";
}

Result<std::vector<EtcdMember>> parse_etcd_members(const std::string& output)
{
  const auto lines = text::split(output, '\n');
  if (lines.empty()) {
    return fail(ErrorCode::failed, "etcd's member list is empty");
  }
  std::vector<EtcdMember> members;
  try {
    const auto doc = nlohmann::json::parse(lines[0]);
    for (const auto& m : doc.value("members", nlohmann::json::array())) {
      EtcdMember e;
      e.id = m.at("ID").is_string() ? m.at("ID").get<std::string>() : std::to_string(m.at("ID").get<uint64_t>());
      e.name = m.value("name", "");
      e.client_urls = m.value("clientURLs", std::vector<std::string>{});
      members.push_back(std::move(e));
    }
  } catch (const nlohmann::json::exception& e) {
    return fail(ErrorCode::failed, fmt::format("etcd's member list could not be read: {}", e.what()));
  }
  for (size_t i = 1; i < lines.size(); ++i) {
    const auto w = text::split(std::string(text::trim(lines[i])), ' ');
    if (w.size() == 3 && w[0] == "health") {
      for (auto& m : members) {
        if (!m.client_urls.empty() && m.client_urls[0] == w[1]) {
          m.healthy = w[2] == "true";
        }
      }
    }
  }
  return members;
}

std::string etcd_remove_member_script(const std::string& id)
{
  return std::string(k_etcd_curl) + fmt::format("e -X POST -d '{{\"ID\":\"{}\"}}' https://127.0.0.1:2379/v3/cluster/member/remove >/dev/null\n", id);
}

std::string quorum_refusal(const std::vector<EtcdMember>& members, const std::vector<std::string>& leaving)
{
  const size_t n = members.size();
  const size_t healthy = static_cast<size_t>(std::count_if(members.begin(), members.end(), [](const EtcdMember& m) { return m.healthy; }));
  if (healthy < n / 2 + 1) {
    return fmt::format("etcd has no quorum now: {} of its {} members are healthy, and a member is removed only by a quorum", healthy, n);
  }
  size_t staying = 0;
  size_t staying_healthy = 0;
  for (const auto& m : members) {
    if (std::find(leaving.begin(), leaving.end(), m.name) == leaving.end()) {
      ++staying;
      staying_healthy += m.healthy ? 1 : 0;
    }
  }
  if (staying == 0) {
    return "no etcd member would be left";
  }
  if (staying_healthy < staying / 2 + 1) {
    return fmt::format("etcd would lose its quorum: {} member{} would stay, of which {} healthy, and {} must be", staying, staying == 1 ? "" : "s",
                       staying_healthy, staying / 2 + 1);
  }
  return {};
}

} // namespace mlplat::kube
