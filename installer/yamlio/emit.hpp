// Writing YAML files with yaml-cpp's emitter: every value from the cluster file or the matrix lands in
// a rendered file as a YAML scalar, quoted and escaped by the emitter, never spliced into text.
#pragma once

#include "util/error.hpp"

#include <yaml-cpp/yaml.h>

#include <map>
#include <string>
#include <variant>
#include <string_view>
#include <vector>

namespace mlplat::yamlio {

// --- Interface ---

// A template's documents (a multi-document YAML text from manifests/), parsed; its leading comment
// lines are kept in `header` to be written back verbatim (the template's own words, no values).
struct Template {
  std::string header;
  std::vector<YAML::Node> documents;
};

// Parses `text` (named `name` in errors) into documents.
Result<Template> parse_template(std::string_view text, const std::string& name);

// The document whose `kind` is `kind`, or an error naming the template.
Result<YAML::Node> document_of_kind(const Template& t, const std::string& kind, const std::string& name);

// A string scalar set from data: always emitted double-quoted (so "123" or "yes" stay strings, and a
// newline or a quote in it stays inside the value).
YAML::Node string_value(const std::string& value);

// The header, then each document, separated by "---". Scalars that were plain in the template (6443,
// true, v1beta4) are written plain; every other scalar double-quoted.
std::string emit(const Template& t);

// A value for a placeholder (@NAME@) of a YAML template: text (substituted inside the scalars that
// hold the placeholder, which become quoted strings), a number (a scalar that is exactly the
// placeholder becomes a plain number), or a node (a scalar that is exactly the placeholder becomes
// that list or map).
using FillValue = std::variant<std::string, long, YAML::Node>;
using FillValues = std::vector<std::pair<std::string, FillValue>>;

// The template `text` (named `name` in errors) with its placeholders filled inside the parsed
// documents, then emitted: a value can never end its scalar, start a key or add a document. A
// placeholder left anywhere (or a node value inside a longer scalar) is an error naming it.
Result<std::string> fill(std::string_view text, const std::string& name, const FillValues& values);

// A list of strings as a node, for a FillValue.
YAML::Node string_list(const std::vector<std::string>& items);

} // namespace mlplat::yamlio
