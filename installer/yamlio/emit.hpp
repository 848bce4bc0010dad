// Writing YAML files with yaml-cpp's emitter: every value from the cluster file or the matrix lands in
// a rendered file as a YAML scalar, quoted and escaped by the emitter, never spliced into text.
#pragma once

#include "util/error.hpp"

#include <yaml-cpp/yaml.h>

#include <string>
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

} // namespace mlplat::yamlio
