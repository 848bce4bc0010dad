#include "util/toml.hpp"

#include <fmt/core.h>

namespace mlplat::toml {

std::string string(std::string_view value)
{
  std::string out = "\"";
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
    case '"': out += "\\\""; break;
    case '\\': out += "\\\\"; break;
    case '\b': out += "\\b"; break;
    case '\t': out += "\\t"; break;
    case '\n': out += "\\n"; break;
    case '\f': out += "\\f"; break;
    case '\r': out += "\\r"; break;
    default:
      if (u < 0x20 || u == 0x7f) {
        out += fmt::format("\\u{:04X}", u);
      } else {
        out += c;
      }
    }
  }
  return out + "\"";
}

std::string key(std::string_view k)
{
  const bool bare = !k.empty() && k.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == std::string_view::npos;
  return bare ? std::string(k) : string(k);
}

Writer& Writer::comment(std::string_view text)
{
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t end = std::min(text.find('\n', pos), text.size());
    std::string line;
    for (const char c : text.substr(pos, end - pos)) {
      if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) {
        line += c;
      }
    }
    m_text += line.empty() ? "#\n" : "# " + line + "\n";
    pos = end + 1;
  }
  return *this;
}

Writer& Writer::set(std::string_view k, std::string_view value)
{
  m_text += key(k) + " = " + string(value) + "\n";
  return *this;
}

Writer& Writer::set(std::string_view k, const std::vector<std::string>& values)
{
  std::string list;
  for (const auto& v : values) {
    list += (list.empty() ? "" : ", ") + string(v);
  }
  m_text += key(k) + " = [" + list + "]\n";
  return *this;
}

Writer& Writer::table(const std::vector<std::string>& path)
{
  std::string header;
  for (const auto& part : path) {
    header += (header.empty() ? "" : ".") + key(part);
  }
  m_text += "\n[" + header + "]\n";
  return *this;
}

} // namespace mlplat::toml
