// Logging: one process-wide logger writing human lines to stderr (info, or debug with -v) and every
// level to an optional log file. Each line passes a redactor that knows every secret registered with
// it, so a secret never reaches a terminal or a file even at debug level.
#pragma once

#include <fmt/core.h>

#include <string>
#include <string_view>

namespace mlplat::log {

// --- Interface ---

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

// Sets the lowest level written to stderr (default info).
void set_stderr_level(Level level);

// Opens (creating 0600, truncating) a log file that receives every level, each line stamped with
// its UTC time in ISO 8601. Returns false and leaves
// logging to stderr alone if the file cannot be opened; `error` then says why.
bool open_file(const std::string& path, std::string& error);

// Registers a secret value: from now on every occurrence in a log line is replaced by "[redacted]".
// Values shorter than 4 characters are ignored (they would redact ordinary text).
void add_secret(std::string_view secret);

// Registers every line of a PEM block's body (a private key) as a secret, so no part of it is logged.
void add_secret_lines(std::string_view pem);

// Replaces every registered secret in `text` by "[redacted]".
std::string redact(std::string_view text);

// Writes one line at `level`; `host` (may be empty) prefixes it as "host: ".
void write(Level level, std::string_view host, std::string_view message);

template<typename... Args> void debug(fmt::format_string<Args...> f, Args&&... args)
{
  write(Level::debug, {}, fmt::format(f, std::forward<Args>(args)...));
}
template<typename... Args> void info(fmt::format_string<Args...> f, Args&&... args)
{
  write(Level::info, {}, fmt::format(f, std::forward<Args>(args)...));
}
template<typename... Args> void warn(fmt::format_string<Args...> f, Args&&... args)
{
  write(Level::warn, {}, fmt::format(f, std::forward<Args>(args)...));
}
template<typename... Args> void error(fmt::format_string<Args...> f, Args&&... args)
{
  write(Level::error, {}, fmt::format(f, std::forward<Args>(args)...));
}

} // namespace mlplat::log
