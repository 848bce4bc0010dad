// Small string helpers used across mlplat.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mlplat::text {

// --- Interface ---

// Quotes `word` for a POSIX shell: safe words are returned as they are, anything else is wrapped in
// single quotes with embedded single quotes written as '\''.
std::string shell_quote(std::string_view word);

// Joins argv into one shell command line, each word quoted with shell_quote.
std::string shell_join(const std::vector<std::string>& argv);

// The candidate closest to `word` by edit distance, if it is close enough to be a likely typo
// (distance at most 2, or at most a third of the word's length for longer words).
std::optional<std::string> did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

// Levenshtein distance, case-insensitive.
size_t edit_distance(std::string_view a, std::string_view b);

// `text` with every occurrence of `from` replaced by `to`.
std::string replace_all(std::string text, std::string_view from, std::string_view to);

// Every line of `text` prefixed with `prefix` (a trailing newline is not followed by a prefix).
std::string indent(std::string_view text, std::string_view prefix);

// Removes leading and trailing whitespace.
std::string_view trim(std::string_view s);

// Splits on `sep`, keeping empty fields.
std::vector<std::string> split(std::string_view s, char sep);

// Joins with `sep`.
std::string join(const std::vector<std::string>& items, std::string_view sep);

} // namespace mlplat::text
