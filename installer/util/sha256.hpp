// SHA-256 through OpenSSL's EVP interface.
#pragma once

#include "util/error.hpp"

#include <filesystem>
#include <string>
#include <string_view>

namespace mlplat {

// --- Interface ---

// Incremental hasher: feed bytes with update(), get the lowercase hex digest with hex_digest() (once).
class Sha256 {
public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::string_view bytes);
  std::string hex_digest();

private:
  struct Impl;
  Impl* m_impl;
};

// Lowercase hex SHA-256 of `bytes`.
std::string sha256_hex(std::string_view bytes);

// Lowercase hex SHA-256 of a file's content, read in chunks.
Result<std::string> sha256_file_hex(const std::filesystem::path& path);

} // namespace mlplat
