#include "phases/phases.hpp"

#include "util/sha256.hpp"
#include "util/text.hpp"

#include <fmt/core.h>

namespace mlplat::phases {

using namespace workflow;

namespace {

// One line per fact of every node: "NODE L key=value", "NODE T key[=value]:Effect", "NODE ML keys",
// "NODE MT key:Effect,...". Keys and values are validated at load (no spaces, quotes or commas).
std::string read_nodes()
{
  return fmt::format(
    "all=$({} get nodes -o go-template='{{{{range .items}}}}{{{{$n := .metadata.name}}}}"
    "{{{{range $k, $v := .metadata.labels}}}}{{{{$n}}}} L {{{{$k}}}}={{{{$v}}}}{{{{\"\\n\"}}}}{{{{end}}}}"
    "{{{{range .spec.taints}}}}{{{{$n}}}} T {{{{.key}}}}{{{{with .value}}}}={{{{.}}}}{{{{end}}}}:{{{{.effect}}}}{{{{\"\\n\"}}}}{{{{end}}}}"
    "{{{{$n}}}} ML {{{{with .metadata.annotations}}}}{{{{with index . \"{}\"}}}}{{{{.}}}}{{{{end}}}}{{{{end}}}}{{{{\"\\n\"}}}}"
    "{{{{$n}}}} MT {{{{with .metadata.annotations}}}}{{{{with index . \"{}\"}}}}{{{{.}}}}{{{{end}}}}{{{{end}}}}{{{{\"\\n\"}}}}"
    "{{{{end}}}}') || exit 2\n",
    kubectl(), k_labels_annotation, k_taints_annotation);
}

std::string label_keys(const config::Host& h)
{
  std::vector<std::string> keys;
  for (const auto& [k, v] : h.labels) {
    keys.push_back(k);
  }
  return text::join(keys, ",");
}

// A taint is identified by its key and effect.
std::string taint_ids(const config::Host& h)
{
  std::vector<std::string> ids;
  for (const auto& t : h.taints) {
    ids.push_back(t.key + ":" + t.effect);
  }
  return text::join(ids, ",");
}

std::string has(const std::string& line)
{
  return fmt::format("printf '%s\\n' \"$all\" | grep -qxF {} || exit 1\n", text::shell_quote(line));
}

} // namespace

std::string nodes_check_script(const config::Cluster& cluster)
{
  std::string s = fmt::format("[ -f {} ] || exit 1\n", k_admin_kubeconfig) + read_nodes();
  for (const auto& h : cluster.hosts) {
    for (const auto& [k, v] : h.labels) {
      s += has(fmt::format("{} L {}={}", h.name, k, v));
    }
    for (const auto& t : h.taints) {
      s += has(fmt::format("{} T {}", h.name, t.str()));
    }
    s += has(fmt::format("{} ML {}", h.name, label_keys(h)));
    s += has(fmt::format("{} MT {}", h.name, taint_ids(h)));
  }
  return s + "exit 0\n";
}

std::string nodes_apply_script(const config::Cluster& cluster)
{
  const std::string k = kubectl();
  std::string s = "set -e\n";
  for (const auto& h : cluster.hosts) {
    const std::string node = text::shell_quote(h.name);
    // A node that joined a moment ago may not have registered yet.
    s += fmt::format("i=0\nuntil {0} get node {1} >/dev/null 2>&1; do\n"
                     "  [ $i -lt 60 ] || {{ echo 'node {2} is not registered with the API server after 60 s' >&2; exit 1; }}\n"
                     "  i=$((i + 1)); sleep 1\ndone\n",
                     k, node, h.name);
  }
  s += read_nodes();
  for (const auto& h : cluster.hosts) {
    const std::string node = text::shell_quote(h.name);
    // What mlplat set before and the cluster file no longer has.
    s += fmt::format("for key in $(printf '%s\\n' \"$all\" | sed -n 's/^{0} ML //p' | tr , ' '); do\n"
                     "  case ,{1}, in *,\"$key\",*) ;; *) {2} label node {3} \"$key-\" >/dev/null ;; esac\ndone\n",
                     h.name, label_keys(h), k, node);
    s += fmt::format("present=$(printf '%s\\n' \"$all\" | sed -n 's/^{0} T //p' | sed 's/=[^:]*:/:/')\n"
                     "for t in $(printf '%s\\n' \"$all\" | sed -n 's/^{0} MT //p' | tr , ' '); do\n"
                     "  case ,{1}, in *,\"$t\",*) ;; *) if printf '%s\\n' \"$present\" | grep -qxF \"$t\"; then "
                     "{2} taint node {3} \"$t-\" >/dev/null; fi ;; esac\ndone\n",
                     h.name, taint_ids(h), k, node);
    if (!h.labels.empty()) {
      std::vector<std::string> pairs;
      for (const auto& [key, value] : h.labels) {
        pairs.push_back(text::shell_quote(key + "=" + value));
      }
      s += fmt::format("{} label node {} --overwrite {} >/dev/null\n", k, node, text::join(pairs, " "));
    }
    for (const auto& t : h.taints) {
      s += fmt::format("{} taint node {} --overwrite {} >/dev/null\n", k, node, text::shell_quote(t.str()));
    }
    s += fmt::format("{} annotate node {} --overwrite {} {} >/dev/null\n", k, node,
                     text::shell_quote(std::string(k_labels_annotation) + "=" + label_keys(h)),
                     text::shell_quote(std::string(k_taints_annotation) + "=" + taint_ids(h)));
  }
  return s;
}

PhaseSpec nodes()
{
  PhaseSpec spec;
  spec.path = "cluster/nodes";
  spec.summary = "node labels and taints from the cluster file";
  spec.build = [](Context& ctx) -> Result<Phase> {
    transport::Fleet& fleet = ctx.fleet;
    Phase p;
    p.name = "nodes";
    p.summary = "node labels and taints from the cluster file";
    p.hosts = {ctx.first_control_plane};
    p.deadline = std::chrono::seconds(180);
    const std::string check = nodes_check_script(ctx.cluster);
    const std::string apply = nodes_apply_script(ctx.cluster);
    p.steps = [&fleet, check, apply](size_t) {
      ScriptOptions options;
      options.apply_deadline = std::chrono::seconds(150);
      return std::vector<Step>{script_step(fleet, "labels-and-taints", sha256_hex(apply), "check the nodes' labels and taints", check,
                                           "label and taint the nodes as the cluster file says", apply, options)};
    };
    return p;
  };
  return spec;
}

} // namespace mlplat::phases
