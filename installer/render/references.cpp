#include "render/references.hpp"

#include "yamlio/emit.hpp"

#include <fmt/core.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>

namespace mlplat::render {

namespace {

// Characters that end a token inside a longer value: an argument (--executor-image=X), a list, quotes.
bool delimiter(char c)
{
  return std::isspace(static_cast<unsigned char>(c)) != 0 || c == '=' || c == ',' || c == '"' || c == '\'' || c == '(' ||
         c == ')' || c == '[' || c == ']' || c == '{' || c == '}' || c == ';' || c == '`';
}

bool label_char(char c)
{
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

struct Walker {
  const RewriteRules& rules;
  std::set<std::string> services;
  Rewritten out;
  std::string doc_name;

  // `value` with every service address in `from` moved to `to`.
  std::string move_namespace(const std::string& value) const
  {
    if (rules.from_namespace.empty() || rules.from_namespace == rules.to_namespace) {
      return value;
    }
    std::string s = value;
    for (const auto& svc : services) {
      const std::string needle = svc + "." + rules.from_namespace;
      for (size_t at = s.find(needle); at != std::string::npos; at = s.find(needle, at + 1)) {
        if (at > 0 && (label_char(s[at - 1]) || s[at - 1] == '.')) {
          continue;
        }
        const size_t end = at + needle.size();
        if (end < s.size() && label_char(s[end])) {
          continue;
        }
        // "x.kubeflow.org" is a domain, not the service x in namespace kubeflow: only ".svc" may follow.
        if (end < s.size() && s[end] == '.' && s.compare(end, 4, ".svc") != 0) {
          continue;
        }
        s.replace(at, needle.size(), svc + "." + rules.to_namespace);
      }
    }
    return s;
  }

  // Service addresses still in the old namespace (for a service this render does not define).
  void find_leftovers(const std::string& value, const std::string& where)
  {
    if (rules.from_namespace.empty() || rules.from_namespace == rules.to_namespace) {
      return;
    }
    const std::string svc_form = "." + rules.from_namespace + ".svc";
    if (value.find(svc_form) != std::string::npos) {
      out.leftovers.push_back(fmt::format("{} ({})", value.substr(0, 120), where));
      return;
    }
    const std::string port_form = "." + rules.from_namespace + ":";
    for (size_t at = value.find(port_form); at != std::string::npos; at = value.find(port_form, at + 1)) {
      if (at > 0 && label_char(value[at - 1])) {
        out.leftovers.push_back(fmt::format("{} ({})", value.substr(0, 120), where));
        return;
      }
    }
  }

  std::string rewrite_image(const ImageRef& ref, const std::string& where)
  {
    ImageRef now = ref;
    if (const auto it = rules.mirrors.find(ref.registry); it != rules.mirrors.end()) {
      now.registry = mirror_host(it->second);
    }
    out.images.push_back({ref.full(), now.full(), where});
    // As written: a reference without a tag stays without one (its meaning, :latest, is the same).
    return now.tag_written ? now.full() : now.registry + "/" + now.path;
  }

  // A value that is not an image field: its tokens that are references of a known registry.
  std::string rewrite_tokens(const std::string& value, const std::string& where)
  {
    std::string result;
    size_t i = 0;
    while (i < value.size()) {
      if (delimiter(value[i])) {
        result += value[i++];
        continue;
      }
      size_t j = i;
      while (j < value.size() && !delimiter(value[j])) {
        ++j;
      }
      std::string token = value.substr(i, j - i);
      const auto slash = token.find('/');
      const auto ref = slash == std::string::npos ? std::nullopt : parse_image(token);
      if (ref && rules.registries.count(token.substr(0, slash)) != 0) {
        result += rewrite_image(*ref, where);
      } else {
        result += token;
      }
      i = j;
    }
    return result;
  }

  void scalar(YAML::Node node, const std::string& key, const std::string& where)
  {
    const std::string value = node.Scalar();
    std::string now;
    if (key == "image") {
      const auto ref = parse_image(value);
      now = ref ? rewrite_image(*ref, where) : value;
    } else {
      now = move_namespace(rewrite_tokens(value, where));
    }
    if (key == "namespace" && !rules.from_namespace.empty() && rules.from_namespace != rules.to_namespace && now == rules.from_namespace) {
      out.leftovers.push_back(fmt::format("namespace {} ({})", now, where));
    }
    find_leftovers(now, where);
    if (now != value) {
      node = now;
      node.SetTag("!");
    }
  }

  void walk(YAML::Node node, const std::string& key, const std::string& where)
  {
    switch (node.Type()) {
      case YAML::NodeType::Scalar:
        scalar(node, key, where);
        break;
      case YAML::NodeType::Sequence:
        for (size_t i = 0; i < node.size(); ++i) {
          walk(node[i], key, fmt::format("{}[{}]", where, i));
        }
        break;
      case YAML::NodeType::Map:
        for (auto it = node.begin(); it != node.end(); ++it) {
          const std::string k = it->first.IsScalar() ? it->first.Scalar() : std::string();
          walk(it->second, k, where.back() == ' ' ? where + k : where + "." + k);
        }
        break;
      default:
        break;
    }
  }
};

std::string doc_label(const YAML::Node& doc)
{
  const std::string kind = doc["kind"] && doc["kind"].IsScalar() ? doc["kind"].Scalar() : "?";
  const std::string name = doc["metadata"] && doc["metadata"]["name"] && doc["metadata"]["name"].IsScalar() ? doc["metadata"]["name"].Scalar() : "?";
  return kind + "/" + name;
}

} // namespace

std::string mirror_host(const std::string& url)
{
  std::string host = url;
  if (const auto scheme = host.find("://"); scheme != std::string::npos) {
    host = host.substr(scheme + 3);
  }
  while (!host.empty() && host.back() == '/') {
    host.pop_back();
  }
  return host;
}

std::set<std::string> known_registries()
{
  return {"docker.io", "index.docker.io", "registry-1.docker.io", "ghcr.io", "gcr.io", "quay.io", "registry.k8s.io", "k8s.gcr.io",
          "public.ecr.aws", "mcr.microsoft.com", "nvcr.io", "us-docker.pkg.dev", "europe-docker.pkg.dev", "asia-docker.pkg.dev"};
}

Result<Rewritten> rewrite_documents(const std::string& yaml, const std::string& name, const RewriteRules& rules)
{
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(yaml);
  } catch (const YAML::Exception& e) {
    return fail(ErrorCode::failed, fmt::format("{} is not valid YAML: {}", name, e.what()));
  }
  Walker w{rules, {}, {}, {}};
  for (const auto& doc : docs) {
    if (doc.IsMap() && doc["kind"] && doc["kind"].IsScalar() && doc["kind"].Scalar() == "Service" && doc["metadata"] && doc["metadata"]["name"]) {
      w.services.insert(doc["metadata"]["name"].Scalar());
    }
  }
  yamlio::Template t;
  for (auto& doc : docs) {
    if (doc.IsNull()) {
      continue;
    }
    w.walk(doc, "", doc_label(doc) + ": ");
    t.documents.push_back(doc);
  }
  w.out.yaml = yamlio::emit(t);
  return std::move(w.out);
}

std::vector<std::string> unmirrored(const std::vector<FoundImage>& found, const std::map<std::string, std::string>& mirrors)
{
  std::vector<std::string> out;
  for (const auto& f : found) {
    const auto ref = parse_image(f.rendered);
    if (ref && mirrors.count(ref->registry) != 0) {
      out.push_back(fmt::format("{} ({})", f.rendered, f.where));
    }
  }
  return out;
}

} // namespace mlplat::render
