// Rendering a doctor report: a table grouped by host and severity for people (colour on a terminal),
// or JSON for programs (schema: docs/doctor.schema.json).
#pragma once

#include "doctor/engine.hpp"

#include <string>

namespace mlplat::doctor {

// --- Interface ---

enum class Colour { no, yes };

// The human report: hosts with problems first, errors before warnings, each with what was seen and the
// fix; hosts where everything passed on one line; a summary line saying whether install may proceed.
std::string render_text(const Report& report, Colour colour);

// The JSON report (every finding, passes included), as documented in docs/doctor.md.
std::string render_json(const Report& report);

} // namespace mlplat::doctor
