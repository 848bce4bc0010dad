// Reading mlplat's YAML data files (the cluster file, the check catalogue, later the matrix) with
// positions: every problem found is kept with its file:line:column and a fix, and every value read is
// recorded under its dotted path ("spec.hosts[1].address") so later checks can point at it.
#pragma once

#include "util/error.hpp"

#include <yaml-cpp/yaml.h>

#include <functional>
#include <list>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mlplat::yamlio {

// --- Interface ---

using Positions = std::map<std::string, Location>;

// Every problem found in one file.
struct Problems {
  std::string file;
  std::vector<Error> list;

  Location at(const YAML::Mark& mark) const;
  void add(Location where, std::string message, std::string fix = {});
  void add(const YAML::Mark& mark, std::string message, std::string fix = {});

  // All problems, sorted by position, as one Error with a child per problem (code config_invalid).
  // No error when there are none.
  Status to_status() const;
};

// The largest YAML file mlplat reads (a cluster file of thousands of hosts is well under 1 MiB; the
// matrix is 20 KiB).
inline constexpr size_t k_max_document_bytes = 4 * 1024 * 1024;
// The deepest nesting of mappings and lists (the cluster file needs 6, the matrix 5).
inline constexpr int k_max_depth = 64;
// The most nodes (scalars, mappings, lists; aliases expanded) in one file: a cluster file of 5000
// hosts has about 60,000.
inline constexpr size_t k_max_nodes = 200000;
// How many alias uses a file may have when aliases are allowed at all.
inline constexpr size_t k_max_aliases = 100;

// mlplat's own formats (cluster file, profile, matrix, check catalogue) need no anchors: they are
// refused. Files of other projects (a kustomization in a bundle) may use a few.
enum class Aliases { refused, limited };

// What a YAML text may be before it is parsed into nodes: yaml-cpp's node builder expands aliases (a
// 546-byte "billion laughs" would take unbounded time and memory), recurses per nesting level and
// spends a few hundred bytes per node.
struct Limits {
  size_t max_bytes = k_max_document_bytes;
  int max_depth = k_max_depth;
  size_t max_nodes = k_max_nodes;
  Aliases aliases = Aliases::refused;
  size_t max_aliases = k_max_aliases;
};

// Checks `text` against `limits` with yaml-cpp's event parser, which does not expand aliases: linear
// in the text's size. Nodes are counted as they would be with aliases expanded (an alias counts as its
// anchor's node does). The first violation (size, an anchor or alias where refused, the alias beyond
// the limit, nesting too deep, too many nodes) is added to `problems` at its line:column, as is a
// syntax error; returns whether the text may be parsed.
bool check_limits(std::string_view text, Problems& problems, const Limits& limits = {});

// Parses `text` after check_limits. Syntax errors, limits exceeded and an empty document are added to
// `problems` (the node is then null); duplicate keys anywhere in the document are added too (yaml-cpp
// keeps one silently).
YAML::Node parse(std::string_view text, Problems& problems, const std::string& empty_fix, const Limits& limits = {});

// "a mapping", "a list", "'text'" or "nothing", for messages.
std::string describe(const YAML::Node& node);

// Adds "<path>: '<value>' is not one of <names>" with the closest name as the fix.
void add_choice_error(Problems& problems, const YAML::Mark& mark, const std::string& path, const std::string& value,
                      const std::vector<std::string>& names);

// "parent.key", or "key" at the top.
std::string child_path(const std::string& parent, const std::string& key);

enum class Need { optional, required };

// Reads one YAML mapping. Each accessor records the key it asks for; finish() reports every key no
// accessor asked for as unknown, suggesting the closest known key. Type errors, values outside a
// choice or range, and missing required keys are added to the Problems with their positions.
class MapReader {
public:
  MapReader(Problems& problems, Positions& positions, const YAML::Node& node, std::string path);

  bool valid() const { return m_valid; }
  const std::string& path() const { return m_path; }

  // Each returns whether the key was present and well formed (then `out` is set).
  bool str(const std::string& key, std::string& out, Need need = Need::optional);
  bool integer(const std::string& key, int& out, int min, int max, Need need = Need::optional);
  bool boolean(const std::string& key, bool& out);
  bool string_list(const std::string& key, std::vector<std::string>& out, Need need = Need::optional);
  bool string_map(const std::string& key, std::map<std::string, std::string>& out);
  template<typename E>
  bool choice(const std::string& key, E& out, const std::vector<std::pair<std::string, E>>& options,
              Need need = Need::optional);
  // A nested mapping, read by `fn` (and finished after it).
  bool sub(const std::string& key, const std::function<void(MapReader&)>& fn, Need need = Need::optional);
  // A list; `fn` gets each item and its path ("spec.hosts[2]").
  bool list(const std::string& key, const std::function<void(const YAML::Node&, const std::string&)>& fn,
            Need need = Need::optional);

  // Reports the keys nobody asked for.
  void finish();

private:
  const YAML::Node* get(const std::string& key, Need need);
  void type_error(const std::string& key, const YAML::Node& node, const std::string& expected);
  void record(const std::string& path, const YAML::Node& node);

  Problems& m_problems;
  Positions& m_positions;
  const YAML::Node& m_node;
  std::string m_path;
  bool m_valid = false;
  std::set<std::string> m_known;
  std::vector<std::string> m_asked;
  std::list<YAML::Node> m_found; // stable addresses for returned nodes
};

// Reads a data file's apiVersion and kind (both required) and adds a problem when either is not the
// expected one. `what` names the kind in words ("a compatibility matrix").
void read_header(MapReader& top, Problems& problems, Positions& positions, const std::string& api_version,
                 const std::string& kind, const std::string& what);

// --- Inline implementations ---

template<typename E>
bool MapReader::choice(const std::string& key, E& out, const std::vector<std::pair<std::string, E>>& options, Need need)
{
  std::string value;
  if (!str(key, value, need)) {
    return false;
  }
  std::vector<std::string> names;
  for (const auto& [name, e] : options) {
    if (name == value) {
      out = e;
      return true;
    }
    names.push_back(name);
  }
  add_choice_error(m_problems, get(key, need)->Mark(), child_path(m_path, key), value, names);
  return false;
}

} // namespace mlplat::yamlio
