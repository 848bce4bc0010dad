// A TOML writer for the few keys mlplat renders (containerd's certs.d hosts.toml, the sandbox image
// of its config.toml): strings are TOML basic strings with every quote, backslash and control
// character escaped (TOML v1.0.0, "String"), keys bare only when TOML allows, so no value can end a
// string or start a line of its own.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mlplat::toml {

// --- Interface ---

// `value` as a TOML basic string, quotes included.
std::string string(std::string_view value);

// `key` bare when it is [A-Za-z0-9_-]+, else as a basic string.
std::string key(std::string_view key);

// Builds a document line by line.
class Writer {
public:
  // "# text" (each line of `text`, control characters dropped).
  Writer& comment(std::string_view text);
  // key = "value"
  Writer& set(std::string_view key, std::string_view value);
  // key = ["a", "b"]
  Writer& set(std::string_view key, const std::vector<std::string>& values);
  // [a."b".c]: a table header from its dotted key's parts.
  Writer& table(const std::vector<std::string>& path);
  const std::string& text() const { return m_text; }

private:
  std::string m_text;
};

} // namespace mlplat::toml
