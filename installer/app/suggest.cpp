// The CLI11 app tree as data, and "did you mean" for an unknown command or flag.
#include "app/cli_tree.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <functional>

namespace mlplat::app {

namespace {

std::vector<const CLI::App*> named_subcommands(const CLI::App& app)
{
  // Option groups are Apps without a name; disabled ones are not commands.
  return app.get_subcommands([](const CLI::App* sub) { return !sub->get_name().empty() && !sub->get_disabled(); });
}

std::vector<CliFlag> own_flags(const CLI::App& app)
{
  std::vector<CliFlag> out;
  for (const CLI::Option* opt : app.get_options()) {
    if (!opt->nonpositional()) {
      continue;
    }
    CliFlag f;
    for (const auto& s : opt->get_snames()) {
      f.names.push_back("-" + s);
    }
    for (const auto& l : opt->get_lnames()) {
      f.names.push_back("--" + l);
    }
    f.takes_value = opt->get_items_expected_max() > 0;
    out.push_back(std::move(f));
  }
  return out;
}

const CliFlag* find_flag(const CliNode& node, const std::string& name)
{
  for (const auto& f : node.flags) {
    if (std::find(f.names.begin(), f.names.end(), name) != f.names.end()) {
      return &f;
    }
  }
  return nullptr;
}

std::string display(const CliNode& node, const CLI::App& root)
{
  return node.path.empty() ? root.get_name() : root.get_name() + " " + node.path;
}

} // namespace

std::vector<CliNode> cli_tree(const CLI::App& root)
{
  std::vector<CliNode> out;
  std::function<void(const CLI::App&, const std::string&, const std::vector<CliFlag>&)> walk =
    [&](const CLI::App& app, const std::string& path, const std::vector<CliFlag>& inherited) {
      CliNode node;
      node.path = path;
      node.app = &app;
      node.flags = own_flags(app);
      node.flags.insert(node.flags.end(), inherited.begin(), inherited.end());
      for (const CLI::Option* opt : app.get_options()) {
        node.positionals = node.positionals || (opt->get_positional() && !opt->nonpositional());
      }
      const auto subs = named_subcommands(app);
      for (const CLI::App* sub : subs) {
        node.subcommands.push_back(sub->get_name());
      }
      const auto flags = node.flags;
      out.push_back(std::move(node));
      for (const CLI::App* sub : subs) {
        walk(*sub, path.empty() ? sub->get_name() : path + " " + sub->get_name(), flags);
      }
    };
  walk(root, "", {});
  return out;
}

size_t edit_distance(std::string_view a, std::string_view b)
{
  // d[i][j]: the distance of a's first i characters and b's first j, in three rolling rows.
  std::vector<size_t> before(b.size() + 1), previous(b.size() + 1), current(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    previous[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        current[j] = std::min(current[j], before[j - 2] + 1);
      }
    }
    before.swap(previous);
    previous.swap(current);
  }
  return previous[b.size()];
}

std::string closest(std::string_view word, const std::vector<std::string>& candidates)
{
  // Dashes are not part of what was mistyped: "--bundel" is compared as "bundel".
  auto bare = [](std::string_view s) { return s.substr(std::min(s.find_first_not_of('-'), s.size())); };
  const std::string_view w = bare(word);
  if (w.empty()) {
    return {};
  }
  std::string best;
  size_t best_distance = 3;
  std::vector<std::string> prefixed;
  for (const auto& c : candidates) {
    const std::string_view cand = bare(c);
    const size_t d = edit_distance(w, cand);
    if (d < best_distance && d * 3 <= std::max(w.size(), cand.size())) {
      best = c;
      best_distance = d;
    }
    if (w.size() >= 2 && cand.size() > w.size() && cand.substr(0, w.size()) == w) {
      prefixed.push_back(c);
    }
  }
  if (best.empty() && prefixed.size() == 1) {
    best = prefixed.front();
  }
  return best;
}

std::string did_you_mean(const CLI::App& root, const std::vector<std::string>& args)
{
  const auto tree = cli_tree(root);
  auto node_of = [&](const std::string& path) -> const CliNode* {
    for (const auto& n : tree) {
      if (n.path == path) {
        return &n;
      }
    }
    return nullptr;
  };
  const CliNode* node = node_of("");
  for (size_t i = 0; i < args.size() && node != nullptr; ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      break;
    }
    const bool negative_number = a.size() > 1 && a[0] == '-' && std::isdigit(static_cast<unsigned char>(a[1])) != 0;
    if (a.size() > 1 && a[0] == '-' && !negative_number) {
      const bool long_flag = a.rfind("--", 0) == 0;
      const auto eq = a.find('=');
      const std::string name = long_flag ? a.substr(0, eq) : a.substr(0, 2);
      const CliFlag* flag = find_flag(*node, name);
      if (flag == nullptr) {
        if (!long_flag) {
          return {}; // a mistyped short flag has no useful suggestion; CLI11's message stands
        }
        std::vector<std::string> names;
        for (const auto& f : node->flags) {
          for (const auto& n : f.names) {
            if (n.rfind("--", 0) == 0) {
              names.push_back(n);
            }
          }
        }
        const auto guess = closest(name, names);
        return fmt::format("unknown flag '{}' for '{}'{}", name, display(*node, root),
                           guess.empty() ? fmt::format("; '{} --help' lists its flags", display(*node, root))
                                         : fmt::format(": did you mean '{}'?", guess));
      }
      // A value in the same word (--output=json, -cFILE) or in the next one.
      const bool value_attached = long_flag ? eq != std::string::npos : a.size() > 2;
      if (flag->takes_value && !value_attached) {
        ++i;
      }
      continue;
    }
    if (std::find(node->subcommands.begin(), node->subcommands.end(), a) != node->subcommands.end()) {
      node = node_of(node->path.empty() ? a : node->path + " " + a);
      continue;
    }
    if (node->positionals || node->app->get_allow_extras()) {
      continue; // an argument of this command
    }
    if (node->subcommands.empty()) {
      return {}; // an extra word; CLI11's message names it
    }
    const auto guess = closest(a, node->subcommands);
    return fmt::format("unknown command '{}' for '{}'{}", a, display(*node, root),
                       guess.empty() ? fmt::format("; '{} --help' lists them", display(*node, root))
                                     : fmt::format(": did you mean '{}'?", guess));
  }
  return {};
}

} // namespace mlplat::app
