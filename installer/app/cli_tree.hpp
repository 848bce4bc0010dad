// The command line as data, read from the CLI11 app tree after every command is registered: the
// commands and subcommands with the flags each accepts. "Did you mean" and the shell completion
// scripts are built from it, so a command registered later is covered without touching them.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace mlplat::app {

// --- Interface ---

struct CliFlag {
  std::vector<std::string> names;  // "--output", "-c": every spelling
  bool takes_value = false;        // the next word is its value (unless written --flag=value)
};

struct CliNode {
  std::string path;                      // "" for the program, "certs rotate" for a subcommand
  const CLI::App* app = nullptr;
  std::vector<std::string> subcommands;  // the names one level down, in registration order
  std::vector<CliFlag> flags;            // its own flags, then the ancestors' (global flags follow the command)
  bool positionals = false;              // takes positional arguments (bundle verify PATH)
};

// Every command of `root`, depth first (the program itself first), without hidden option groups.
std::vector<CliNode> cli_tree(const CLI::App& root);

// The edit distance of `a` and `b`: insertions, deletions, substitutions and swaps of two
// neighbouring characters, each 1 (optimal string alignment).
size_t edit_distance(std::string_view a, std::string_view b);

// The candidate `word` is most likely a typo of: the closest by edit_distance when at most 2 edits
// away and at most a third of its length (or the only candidate `word` is a prefix of); "" otherwise.
std::string closest(std::string_view word, const std::vector<std::string>& candidates);

// After a failed parse of `args` (argv without the program name): the first command word or flag the
// tree does not know, as a sentence with the closest known one ("unknown command 'instal' for
// 'mlplat': did you mean 'install'?"); "" when every word is known (the error is something else).
std::string did_you_mean(const CLI::App& root, const std::vector<std::string>& args);

// `mlplat completion bash|zsh`: the completion script for `shell`, from cli_tree(root).
std::string completion_script(const CLI::App& root, const std::string& shell);

} // namespace mlplat::app
