#include "yamlio/emit.hpp"

#include <fmt/core.h>

namespace mlplat::yamlio {

namespace {

void emit_node(YAML::Emitter& out, const YAML::Node& node)
{
  switch (node.Type()) {
  case YAML::NodeType::Map:
    out << YAML::BeginMap;
    for (const auto& kv : node) {
      out << YAML::Key;
      emit_node(out, kv.first);
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
    if (node.Tag() == "?") {
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

} // namespace mlplat::yamlio
