#include "yamlio/reader.hpp"

#include "util/text.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <charconv>
#include <sstream>
#include <yaml-cpp/eventhandler.h>

namespace mlplat::yamlio {

namespace {

void check_duplicate_keys(const YAML::Node& node, Problems& problems, const std::string& path)
{
  if (node.IsMap()) {
    std::map<std::string, YAML::Mark> seen;
    for (const auto& kv : node) {
      const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string("?");
      const auto [it, inserted] = seen.emplace(key, kv.first.Mark());
      if (!inserted) {
        problems.add(kv.first.Mark(),
                     fmt::format("{}: duplicate key '{}' (first written at line {}, column {})",
                                 path.empty() ? std::string("top level") : path, key, it->second.line + 1,
                                 it->second.column + 1),
                     "remove one of them; YAML keeps only one value and mlplat will not guess which");
      }
      check_duplicate_keys(kv.second, problems, child_path(path, key));
    }
  } else if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) {
      check_duplicate_keys(node[i], problems, fmt::format("{}[{}]", path, i));
    }
  }
}

std::string where_name(const std::string& path)
{
  return path.empty() ? std::string("top level") : path;
}

// Counts what check_limits limits, from yaml-cpp's events. The nodes are counted as yaml-cpp's node
// builder would make them, aliases expanded: an alias counts as many nodes as its anchor's node has
// (itself counted that way), so the 72 aliases of a 9-level "billion laughs" count as the 10^9 nodes
// they would become, and the scan stops at the alias that passes the limit. The first violation is
// kept and the scan stopped by throwing LimitReached (caught in check_limits, never beyond it), so a
// file costs no more than its text up to the first offending node.
struct LimitReached {};

class LimitScanner final : public YAML::EventHandler {
public:
  LimitScanner(Problems& problems, const Limits& limits) : m_problems(problems), m_limits(limits) {}

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override { leaf(mark, anchor); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor, const std::string&) override { leaf(mark, anchor); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override
  {
    if (m_limits.aliases == Aliases::refused) {
      stop(mark, "a YAML alias (*name): anchors and aliases are not accepted in this file", "write the value out where it is used");
    }
    if (++m_aliases > m_limits.max_aliases) {
      stop(mark, fmt::format("more than {} YAML aliases (*name): refused before parsing, as yaml-cpp would expand them", m_limits.max_aliases),
           "write the values out instead of aliasing them");
    }
    const auto it = m_sizes.find(anchor);
    add(mark, it == m_sizes.end() ? 1 : it->second);
  }
  void OnAnchor(const YAML::Mark& mark, const std::string& name) override
  {
    if (m_limits.aliases == Aliases::refused) {
      stop(mark, fmt::format("a YAML anchor (&{}): anchors and aliases are not accepted in this file", name.substr(0, 64)),
           "remove the anchor and write the value out where it is used");
    }
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor, YAML::EmitterStyle::value) override
  {
    open(mark, anchor);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor, YAML::EmitterStyle::value) override
  {
    open(mark, anchor);
  }
  void OnMapEnd() override { close(); }

private:
  struct Open {
    YAML::anchor_t anchor;
    size_t nodes;  // this collection's nodes so far, itself included, aliases expanded
  };

  // `count` more nodes under the innermost open collection.
  void add(const YAML::Mark& mark, size_t count)
  {
    m_nodes += count;
    if (m_nodes > m_limits.max_nodes) {
      stop(mark, fmt::format("more than {} YAML nodes (aliases expanded): refused before parsing", m_limits.max_nodes),
           "split the file, or write out fewer aliases");
    }
    if (!m_open.empty()) {
      m_open.back().nodes += count;
    }
  }
  void leaf(const YAML::Mark& mark, YAML::anchor_t anchor)
  {
    add(mark, 1);
    if (anchor != YAML::NullAnchor) {
      m_sizes[anchor] = 1;
    }
  }
  void open(const YAML::Mark& mark, YAML::anchor_t anchor)
  {
    if (static_cast<int>(m_open.size()) >= m_limits.max_depth) {
      stop(mark, fmt::format("mappings and lists nested more than {} deep", m_limits.max_depth), "flatten the structure");
    }
    add(mark, 1);
    m_open.push_back(Open{anchor, 1});
  }
  void close()
  {
    const Open done = m_open.back();
    m_open.pop_back();
    if (done.anchor != YAML::NullAnchor) {
      m_sizes[done.anchor] = done.nodes;
    }
    if (!m_open.empty()) {
      m_open.back().nodes += done.nodes - 1; // `add` counted the collection itself already
    }
  }
  [[noreturn]] void stop(const YAML::Mark& mark, std::string message, std::string fix)
  {
    m_problems.add(mark, std::move(message), std::move(fix));
    throw LimitReached{};
  }

  Problems& m_problems;
  const Limits& m_limits;
  size_t m_nodes = 0;
  size_t m_aliases = 0;
  std::vector<Open> m_open;
  std::map<YAML::anchor_t, size_t> m_sizes;
};

} // namespace

bool check_limits(std::string_view text, Problems& problems, const Limits& limits)
{
  if (text.size() > limits.max_bytes) {
    problems.add(Location{problems.file, 1, 1},
                 fmt::format("the file is {} bytes, more than the {} bytes mlplat reads", text.size(), limits.max_bytes),
                 "is this the right file? mlplat's YAML files are far smaller");
    return false;
  }
  std::istringstream in{std::string(text)};
  try {
    YAML::Parser parser(in);
    LimitScanner scanner(problems, limits);
    while (parser.HandleNextDocument(scanner)) {
    }
  } catch (const LimitReached&) {
    return false;
  } catch (const YAML::Exception& e) {
    problems.add(e.mark, fmt::format("not valid YAML: {}", e.msg), "fix the syntax at this position");
    return false;
  }
  return true;
}

Location Problems::at(const YAML::Mark& mark) const
{
  if (mark.is_null()) {
    return Location{file, 1, 1};
  }
  return Location{file, mark.line + 1, mark.column + 1};
}

void Problems::add(Location where, std::string message, std::string fix)
{
  Error e;
  e.code = ErrorCode::config_invalid;
  e.message = std::move(message);
  e.fix = std::move(fix);
  e.where = std::move(where);
  list.push_back(std::move(e));
}

void Problems::add(const YAML::Mark& mark, std::string message, std::string fix)
{
  add(at(mark), std::move(message), std::move(fix));
}

Status Problems::to_status() const
{
  if (list.empty()) {
    return {};
  }
  Error e;
  e.code = ErrorCode::config_invalid;
  e.message = fmt::format("{}: {} problem{} found", file, list.size(), list.size() == 1 ? "" : "s");
  e.children = list;
  std::stable_sort(e.children.begin(), e.children.end(), [](const Error& a, const Error& b) {
    return std::pair(a.where->line, a.where->column) < std::pair(b.where->line, b.where->column);
  });
  return tl::unexpected(std::move(e));
}

YAML::Node parse(std::string_view text, Problems& problems, const std::string& empty_fix, const Limits& limits)
{
  if (!check_limits(text, problems, limits)) {
    return YAML::Node();
  }
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    problems.add(e.mark, fmt::format("not valid YAML: {}", e.msg), "fix the syntax at this position");
    return YAML::Node();
  }
  if (root.IsNull() || !root.IsDefined()) {
    problems.add(Location{problems.file, 1, 1}, "the file is empty", empty_fix);
    return YAML::Node();
  }
  check_duplicate_keys(root, problems, "");
  return root;
}

std::string describe(const YAML::Node& node)
{
  switch (node.Type()) {
  case YAML::NodeType::Map: return "a mapping";
  case YAML::NodeType::Sequence: return "a list";
  case YAML::NodeType::Scalar: return fmt::format("'{}'", node.Scalar());
  case YAML::NodeType::Null: return "nothing";
  case YAML::NodeType::Undefined: return "nothing";
  }
  return "?";
}

void read_header(MapReader& top, Problems& problems, Positions& positions, const std::string& api_version,
                 const std::string& kind, const std::string& what)
{
  std::string found_api;
  std::string found_kind;
  if (top.str("apiVersion", found_api, Need::required) && found_api != api_version) {
    problems.add(positions["apiVersion"], fmt::format("apiVersion: '{}' is not supported", found_api),
                 fmt::format("use {}", api_version));
  }
  if (top.str("kind", found_kind, Need::required) && found_kind != kind) {
    problems.add(positions["kind"], fmt::format("kind: '{}' is not {}", found_kind, what), fmt::format("use {}", kind));
  }
}

std::string child_path(const std::string& parent, const std::string& key)
{
  return parent.empty() ? key : parent + "." + key;
}

void add_choice_error(Problems& problems, const YAML::Mark& mark, const std::string& path, const std::string& value,
                      const std::vector<std::string>& names)
{
  const auto guess = text::did_you_mean(value, names);
  problems.add(mark, fmt::format("{}: '{}' is not one of {}", path, value, text::join(names, ", ")),
               guess ? fmt::format("did you mean '{}'?", *guess) : fmt::format("use one of {}", text::join(names, ", ")));
}

MapReader::MapReader(Problems& problems, Positions& positions, const YAML::Node& node, std::string path)
  : m_problems(problems), m_positions(positions), m_node(node), m_path(std::move(path))
{
  m_valid = node.IsMap();
  if (!m_valid) {
    problems.add(node.Mark(), fmt::format("{}: expected a mapping, found {}", where_name(m_path), describe(node)));
  }
}

bool MapReader::str(const std::string& key, std::string& out, Need need)
{
  const YAML::Node* node = get(key, need);
  if (node == nullptr) {
    return false;
  }
  if (!node->IsScalar() || node->Scalar().empty()) {
    type_error(key, *node, "a string");
    return false;
  }
  out = node->Scalar();
  return true;
}

bool MapReader::integer(const std::string& key, int& out, int min, int max, Need need)
{
  const YAML::Node* node = get(key, need);
  if (node == nullptr) {
    return false;
  }
  int value = 0;
  const std::string& s = node->IsScalar() ? node->Scalar() : std::string();
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (!node->IsScalar() || ec != std::errc() || end != s.data() + s.size()) {
    type_error(key, *node, "an integer");
    return false;
  }
  if (value < min || value > max) {
    m_problems.add(node->Mark(), fmt::format("{}: {} is out of range", child_path(m_path, key), value),
                   fmt::format("use a value from {} to {}", min, max));
    return false;
  }
  out = value;
  return true;
}

bool MapReader::boolean(const std::string& key, bool& out)
{
  const YAML::Node* node = get(key, Need::optional);
  if (node == nullptr) {
    return false;
  }
  if (!node->IsScalar() || (node->Scalar() != "true" && node->Scalar() != "false")) {
    type_error(key, *node, "true or false");
    return false;
  }
  out = node->Scalar() == "true";
  return true;
}

bool MapReader::string_list(const std::string& key, std::vector<std::string>& out, Need need)
{
  const YAML::Node* node = get(key, need);
  if (node == nullptr) {
    return false;
  }
  if (!node->IsSequence()) {
    type_error(key, *node, "a list of strings");
    return false;
  }
  std::vector<std::string> items;
  for (size_t i = 0; i < node->size(); ++i) {
    const YAML::Node item = (*node)[i];
    if (!item.IsScalar()) {
      m_problems.add(item.Mark(), fmt::format("{}[{}]: expected a string, found {}", child_path(m_path, key), i, describe(item)));
      return false;
    }
    items.push_back(item.Scalar());
    record(fmt::format("{}[{}]", child_path(m_path, key), i), item); // each item's position
  }
  out = std::move(items);
  return true;
}

bool MapReader::string_map(const std::string& key, std::map<std::string, std::string>& out)
{
  const YAML::Node* node = get(key, Need::optional);
  if (node == nullptr) {
    return false;
  }
  if (!node->IsMap()) {
    type_error(key, *node, "a mapping of strings");
    return false;
  }
  for (const auto& kv : *node) {
    if (!kv.second.IsScalar()) {
      m_problems.add(kv.second.Mark(), fmt::format("{}.{}: expected a string, found {}", child_path(m_path, key),
                                                   kv.first.Scalar(), describe(kv.second)));
      continue;
    }
    out[kv.first.Scalar()] = kv.second.Scalar();
    record(child_path(child_path(m_path, key), kv.first.Scalar()), kv.second); // each value's position
  }
  return true;
}

bool MapReader::sub(const std::string& key, const std::function<void(MapReader&)>& fn, Need need)
{
  const YAML::Node* node = get(key, need);
  if (node == nullptr) {
    return false;
  }
  MapReader child(m_problems, m_positions, *node, child_path(m_path, key));
  if (!child.valid()) {
    return false;
  }
  fn(child);
  child.finish();
  return true;
}

bool MapReader::list(const std::string& key, const std::function<void(const YAML::Node&, const std::string&)>& fn,
                     Need need)
{
  const YAML::Node* node = get(key, need);
  if (node == nullptr) {
    return false;
  }
  if (!node->IsSequence()) {
    type_error(key, *node, "a list");
    return false;
  }
  for (size_t i = 0; i < node->size(); ++i) {
    const std::string item_path = fmt::format("{}[{}]", child_path(m_path, key), i);
    record(item_path, (*node)[i]);
    fn((*node)[i], item_path);
  }
  return true;
}

void MapReader::finish()
{
  if (!m_valid) {
    return;
  }
  for (const auto& kv : m_node) {
    const std::string key = kv.first.Scalar();
    if (m_known.count(key) != 0) {
      continue;
    }
    const auto guess = text::did_you_mean(key, m_asked);
    m_problems.add(kv.first.Mark(), fmt::format("{}: unknown key '{}'", where_name(m_path), key),
                   guess ? fmt::format("did you mean '{}'?", *guess) : fmt::format("known keys here: {}", text::join(m_asked, ", ")));
  }
}

const YAML::Node* MapReader::get(const std::string& key, Need need)
{
  if (m_known.insert(key).second) {
    m_asked.push_back(key);
  }
  if (!m_valid) {
    return nullptr;
  }
  for (const auto& kv : m_node) {
    if (kv.first.Scalar() == key) {
      if (kv.second.IsNull() && need == Need::optional) {
        return nullptr; // `key:` with nothing means "not set"
      }
      m_found.push_front(kv.second);
      record(child_path(m_path, key), kv.second);
      return &m_found.front();
    }
  }
  if (need == Need::required) {
    m_problems.add(m_node.Mark(), fmt::format("{}: missing required key '{}'", where_name(m_path), key),
                   fmt::format("add '{}:' here", key));
  }
  return nullptr;
}

void MapReader::type_error(const std::string& key, const YAML::Node& node, const std::string& expected)
{
  m_problems.add(node.Mark(), fmt::format("{}: expected {}, found {}", child_path(m_path, key), expected, describe(node)));
}

void MapReader::record(const std::string& path, const YAML::Node& node)
{
  m_positions[path] = m_problems.at(node.Mark());
}

} // namespace mlplat::yamlio
