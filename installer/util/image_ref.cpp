#include "util/image_ref.hpp"

#include <algorithm>
#include <cctype>

namespace mlplat {

namespace {

bool path_char(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' || c == '/';
}

bool tag_char(char c)
{
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '.' || c == '-';
}

bool host_char(char c)
{
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '-' || c == ':';
}

} // namespace

std::string ImageRef::full() const
{
  return registry + "/" + path + suffix;
}

std::optional<ImageRef> parse_image(std::string_view text)
{
  if (text.empty() || text.size() > 512 || text.find("://") != std::string_view::npos) {
    return std::nullopt;
  }
  std::string name(text);
  ImageRef ref;
  if (const auto at = name.find('@'); at != std::string::npos) {
    const std::string digest = name.substr(at + 1);
    if (digest.rfind("sha256:", 0) != 0 || digest.size() != 71 ||
        !std::all_of(digest.begin() + 7, digest.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; })) {
      return std::nullopt;
    }
    ref.suffix = "@" + digest;
    name = name.substr(0, at);
  }
  const auto colon = name.rfind(':');
  const auto last_slash = name.rfind('/');
  if (colon != std::string::npos && (last_slash == std::string::npos || colon > last_slash)) {
    const std::string tag = name.substr(colon + 1);
    if (tag.empty() || tag.size() > 128 || !std::all_of(tag.begin(), tag.end(), tag_char)) {
      return std::nullopt;
    }
    if (ref.suffix.empty()) {
      ref.suffix = ":" + tag;
    }
    name = name.substr(0, colon);
  }
  if (ref.suffix.empty()) {
    ref.suffix = ":latest";
    ref.tag_written = false;
  }
  const auto slash = name.find('/');
  const std::string first = slash == std::string::npos ? std::string() : name.substr(0, slash);
  if (!first.empty() && (first.find('.') != std::string::npos || first.find(':') != std::string::npos || first == "localhost")) {
    if (!std::all_of(first.begin(), first.end(), host_char)) {
      return std::nullopt;
    }
    ref.registry = first;
    ref.path = name.substr(slash + 1);
  } else {
    ref.registry = "docker.io";
    ref.path = name;
  }
  if (ref.registry == "index.docker.io" || ref.registry == "registry-1.docker.io") {
    ref.registry = "docker.io";
  }
  if (ref.path.empty() || ref.path.front() == '/' || ref.path.back() == '/' || ref.path.front() == '-' || ref.path.front() == '.' ||
      ref.path.find("//") != std::string::npos || !std::all_of(ref.path.begin(), ref.path.end(), path_char)) {
    return std::nullopt;
  }
  if (ref.registry == "docker.io" && ref.path.find('/') == std::string::npos) {
    ref.path = "library/" + ref.path;
  }
  return ref;
}

} // namespace mlplat
