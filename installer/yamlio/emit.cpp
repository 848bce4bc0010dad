#include "yamlio/emit.hpp"

#include <fmt/core.h>

namespace mlplat::yamlio {

namespace {

// Keys are written plain (yaml-cpp quotes one that could not be plain); values as the header says.
void emit_node(YAML::Emitter& out, const YAML::Node& node, bool key = false)
{
  switch (node.Type()) {
  case YAML::NodeType::Map:
    out << YAML::BeginMap;
    for (const auto& kv : node) {
      out << YAML::Key;
      emit_node(out, kv.first, true);
      out << YAML::Value;
      emit_node(out, kv.second);
    }
    out << YAML::EndMap;
    break;
  case YAML::NodeType::Sequence:
    out << (node.size() == 0 ? YAML::Flow : YAML::Block) << YAML::BeginSeq;
    for (const auto& item : node) {
      emit_node(out, item);
    }
    out << YAML::EndSeq;
    break;
  case YAML::NodeType::Scalar:
    // "?" is the tag of a plain scalar of the template: its type is YAML's to resolve (an int, a bool).
    if (key || node.Tag() == "?") {
      out << node.Scalar();
    } else {
      out << YAML::DoubleQuoted << node.Scalar();
    }
    break;
  case YAML::NodeType::Null:
  case YAML::NodeType::Undefined:
    out << YAML::Null;
    break;
  }
}

} // namespace

Result<Template> parse_template(std::string_view text, const std::string& name)
{
  Template t;
  size_t pos = 0;
  while (pos < text.size() && text[pos] == '#') {
    const size_t end = text.find('\n', pos);
    const size_t stop = end == std::string_view::npos ? text.size() : end + 1;
    t.header.append(text.substr(pos, stop - pos));
    pos = stop;
  }
  try {
    t.documents = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    return fail(ErrorCode::internal, fmt::format("the template {} is not YAML: {}", name, e.what()));
  }
  return t;
}

Result<YAML::Node> document_of_kind(const Template& t, const std::string& kind, const std::string& name)
{
  for (const auto& d : t.documents) {
    if (d.IsMap() && d["kind"] && d["kind"].Scalar() == kind) {
      return d;
    }
  }
  return fail(ErrorCode::internal, fmt::format("the template {} has no {} document", name, kind));
}

YAML::Node string_value(const std::string& value)
{
  YAML::Node n(value);
  n.SetTag("!");
  return n;
}

std::string emit(const Template& t)
{
  std::string out = t.header;
  for (size_t i = 0; i < t.documents.size(); ++i) {
    YAML::Emitter e;
    e.SetIndent(2);
    emit_node(e, t.documents[i]);
    if (i > 0) {
      out += "---\n";
    }
    out += e.c_str();
    out += "\n";
  }
  return out;
}

namespace {

Status fill_node(YAML::Node& node, const std::string& name, const FillValues& values)
{
  if (node.IsMap()) {
    std::vector<YAML::Node> keys;
    for (const auto& kv : node) {
      keys.push_back(kv.first);
    }
    for (const auto& key : keys) {
      YAML::Node child = node[key];
      TRY(fill_node(child, name, values));
      node[key] = child;
    }
    return {};
  }
  if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) {
      YAML::Node child = node[i];
      TRY(fill_node(child, name, values));
      node[i] = child;
    }
    return {};
  }
  if (!node.IsScalar()) {
    return {};
  }
  const std::string scalar = node.Scalar();
  if (scalar.find('@') == std::string::npos) {
    return {};
  }
  for (const auto& [placeholder, value] : values) {
    if (scalar == placeholder) {
      if (const auto* n = std::get_if<YAML::Node>(&value)) {
        node = YAML::Clone(*n);
        return {};
      }
      if (const auto* number = std::get_if<long>(&value)) {
        node = YAML::Load(std::to_string(*number)); // a plain scalar: a number to the reader
        return {};
      }
    }
  }
  std::string out = scalar;
  for (const auto& [placeholder, value] : values) {
    if (out.find(placeholder) == std::string::npos) {
      continue;
    }
    if (std::holds_alternative<YAML::Node>(value)) {
      return fail(ErrorCode::internal, fmt::format("the template {}: {} (a list or map) must be a whole value, not part of '{}'", name,
                                                   placeholder, scalar));
    }
    const std::string text = std::holds_alternative<long>(value) ? std::to_string(std::get<long>(value)) : std::get<std::string>(value);
    for (size_t at = out.find(placeholder); at != std::string::npos; at = out.find(placeholder, at + text.size())) {
      out.replace(at, placeholder.size(), text);
    }
  }
  if (out != scalar) {
    node = string_value(out);
  }
  return {};
}

} // namespace

YAML::Node string_list(const std::vector<std::string>& items)
{
  YAML::Node list(YAML::NodeType::Sequence);
  for (const auto& i : items) {
    list.push_back(string_value(i));
  }
  return list;
}

Result<std::string> fill(std::string_view text, const std::string& name, const FillValues& values)
{
  TRY_ASSIGN(auto t, parse_template(text, name));
  for (auto& d : t.documents) {
    TRY(fill_node(d, name, values));
  }
  std::string out = emit(t);
  // Every placeholder of the template must have been filled (the header's comments name none).
  for (size_t at = out.find('@'); at != std::string::npos; at = out.find('@', at + 1)) {
    const size_t end = out.find('@', at + 1);
    if (end == std::string::npos) {
      break;
    }
    const std::string word = out.substr(at, end - at + 1);
    if (word.size() > 2 && word.find_first_not_of("@ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == std::string::npos && at >= t.header.size()) {
      return fail(ErrorCode::internal, fmt::format("the template {} has a placeholder {} that nothing fills", name, word));
    }
  }
  return out;
}

} // namespace mlplat::yamlio
