#include "fetch/download.hpp"

#include "util/interrupt.hpp"
#include "util/log.hpp"
#include "util/sha256.hpp"

#include <curl/curl.h>
#include <fmt/core.h>

#include <unistd.h>

#include <cstdio>
#include <mutex>
#include <regex>
#include <sstream>

namespace mlplat::fetch {

namespace {

using Clock = std::chrono::steady_clock;

void global_init()
{
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// "https://dl.k8s.io/a/b" -> "dl.k8s.io/a/b"
std::string host_and_path(const std::string& url)
{
  const auto scheme = url.find("://");
  return scheme == std::string::npos ? url : url.substr(scheme + 3);
}

std::string join_base(const std::string& base, const std::string& upstream)
{
  std::string b = base;
  while (!b.empty() && b.back() == '/') {
    b.pop_back();
  }
  return b + "/" + host_and_path(upstream);
}

std::string human_bytes(double bytes)
{
  const char* units[] = {"B", "KiB", "MiB", "GiB"};
  int u = 0;
  while (bytes >= 1024 && u < 3) {
    bytes /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} {}", bytes, units[u]) : fmt::format("{:.1f} {}", bytes, units[u]);
}

// A progress line for one file on a terminal (redrawn at most 5 times a second); nothing elsewhere,
// where the caller prints one line per finished file.
class ByteProgress {
public:
  ByteProgress(std::string what, Terminal terminal)
    : m_what(std::move(what)),
      m_terminal(terminal == Terminal::yes || (terminal == Terminal::detect && ::isatty(STDERR_FILENO) == 1))
  {
  }
  ~ByteProgress()
  {
    if (m_terminal && m_drawn) {
      std::fputs("\r\033[K", stderr);
    }
  }
  void update(double done, double total)
  {
    if (!m_terminal) {
      return;
    }
    const auto now = Clock::now();
    if (m_drawn && now - m_last < std::chrono::milliseconds(200)) {
      return;
    }
    m_last = now;
    m_drawn = true;
    const std::string line =
      total > 0 ? fmt::format("  {:<24} {:>10} / {:<10} {:>3.0f}%", m_what, human_bytes(done), human_bytes(total), 100 * done / total)
                : fmt::format("  {:<24} {:>10}", m_what, human_bytes(done));
    std::fprintf(stderr, "\r\033[K%s", line.c_str());
    std::fflush(stderr);
  }

private:
  std::string m_what;
  bool m_terminal;
  bool m_drawn = false;
  Clock::time_point m_last{};
};

struct Transfer {
  CURL* curl = nullptr;
  std::FILE* file = nullptr;      // download(): the .part file
  std::string* text = nullptr;    // fetch_text(): the body
  std::size_t max_text = 0;
  curl_off_t offset = 0;          // bytes already in the .part file
  bool status_checked = false;
  bool discard = false;           // an error body: not written
  bool restarted = false;         // the server ignored the Range request
  bool too_large = false;
  bool stalled = false;           // no byte for `stall`: ended by on_progress
  std::chrono::milliseconds stall{30000};
  curl_off_t last_bytes = -1;
  Clock::time_point last_change = Clock::now();
  ByteProgress* progress = nullptr;
};

size_t on_write(char* data, size_t size, size_t count, void* user)
{
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (!t->status_checked) {
    t->status_checked = true;
    long code = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 400) {
      t->discard = true;
    } else if (t->file != nullptr && t->offset > 0 && code == 200) {
      // The server sent the whole file instead of the rest: start over.
      if (::ftruncate(::fileno(t->file), 0) != 0 || std::fseek(t->file, 0, SEEK_SET) != 0) {
        return 0;
      }
      t->offset = 0;
      t->restarted = true;
    }
  }
  if (t->discard) {
    return n;
  }
  if (t->text != nullptr) {
    if (t->text->size() + n > t->max_text) {
      t->too_large = true;
      return 0;
    }
    t->text->append(data, n);
    return n;
  }
  return std::fwrite(data, 1, n, t->file);
}

int on_progress(void* user, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t)
{
  auto* t = static_cast<Transfer*>(user);
  if (interrupt::requested()) {
    return 1;
  }
  // libcurl calls this at least once a second, also while nothing arrives.
  const auto now_time = Clock::now();
  if (now != t->last_bytes) {
    t->last_bytes = now;
    t->last_change = now_time;
  } else if (now_time - t->last_change >= t->stall) {
    t->stalled = true;
    return 1;
  }
  if (t->progress != nullptr && !t->discard) {
    t->progress->update(double(t->offset + now), total > 0 ? double(t->offset + total) : 0.0);
  }
  return 0;
}

Error url_error(ErrorCode code, Retryable retryable, std::string message, std::string fix = {})
{
  Error e;
  e.code = code;
  e.retryable = retryable;
  e.message = std::move(message);
  e.fix = std::move(fix);
  return e;
}

// One request. `remaining` bounds it; `stall` ends it when no byte arrives for that long.
Status perform(Transfer& t, const std::string& what, const std::string& url, const Options& options,
               std::chrono::milliseconds remaining)
{
  global_init();
  if (remaining.count() <= 0) {
    return tl::unexpected(url_error(ErrorCode::deadline, Retryable::no,
                                    fmt::format("{}: no time left to download {} (deadline {} s)", what, url, options.deadline.count()),
                                    "raise the deadline or use a nearer mirror"));
  }
  CURL* curl = curl_easy_init();
  if (curl == nullptr) {
    return fail(ErrorCode::internal, "curl_easy_init failed");
  }
  t.curl = curl;
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "mlplat/" MLPLAT_VERSION);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, long(std::min<long long>(options.connect_timeout.count() * 1000, remaining.count())));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, long(remaining.count()));
  t.stall = options.stall;
  t.last_change = Clock::now();
  if (t.offset > 0) {
    curl_easy_setopt(curl, CURLOPT_RESUME_FROM_LARGE, t.offset);
  }
  const auto started = Clock::now();
  const CURLcode rc = curl_easy_perform(curl);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(curl);
  t.curl = nullptr;

  const std::string detail = errbuf[0] != 0 ? errbuf : curl_easy_strerror(rc);
  if (rc == CURLE_ABORTED_BY_CALLBACK && interrupt::requested()) {
    return fail(ErrorCode::interrupted, fmt::format("{}: download of {} interrupted", what, url));
  }
  if (rc == CURLE_ABORTED_BY_CALLBACK && t.stalled) {
    return tl::unexpected(url_error(ErrorCode::deadline, Retryable::yes,
                                    fmt::format("{}: no data from {} for {} s", what, url, options.stall.count())));
  }
  if (rc == CURLE_RANGE_ERROR) {
    // The server cannot continue a partial file: the next attempt fetches it whole.
    return tl::unexpected(url_error(ErrorCode::connect_failed, Retryable::yes,
                                    fmt::format("{}: {} cannot continue a partial file (no byte ranges)", what, url)));
  }
  if (code >= 400) {
    const bool gone = code == 404 || code == 410 || code == 403 || code == 401;
    if (code == 416) {
      // The partial file is not a prefix the server can continue: it will be fetched whole.
      return tl::unexpected(url_error(ErrorCode::connect_failed, Retryable::yes,
                                      fmt::format("{}: {} refused to continue the partial file (HTTP 416)", what, url)));
    }
    return tl::unexpected(url_error(
      gone ? ErrorCode::failed : ErrorCode::connect_failed, gone ? Retryable::no : Retryable::yes,
      fmt::format("{}: HTTP {} for {}", what, code, url),
      gone ? "check the URL in the matrix row, or that the mirror carries this file under the upstream path" : std::string()));
  }
  if (t.too_large) {
    return fail(ErrorCode::failed, fmt::format("{}: {} is larger than {} bytes; not a checksum file", what, url, t.max_text));
  }
  switch (rc) {
  case CURLE_OK:
    return {};
  case CURLE_OPERATION_TIMEDOUT:
    if (took + std::chrono::milliseconds(500) >= remaining) {
      return tl::unexpected(url_error(ErrorCode::deadline, Retryable::no,
                                      fmt::format("{}: gave up on {} at the {} s deadline for this file", what, url,
                                                  options.deadline.count()),
                                      "use a nearer mirror (--mirror) or a longer deadline"));
    }
    return tl::unexpected(url_error(ErrorCode::deadline, Retryable::yes, fmt::format("{}: {}: {}", what, url, detail)));
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_RESOLVE_PROXY:
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_URL_MALFORMAT:
  case CURLE_PEER_FAILED_VERIFICATION:
    return tl::unexpected(url_error(ErrorCode::failed, Retryable::no, fmt::format("{}: {}: {}", what, url, detail)));
  default:
    // Refused, reset, cut mid-file, nothing received: worth another attempt, which resumes.
    return tl::unexpected(url_error(ErrorCode::connect_failed, Retryable::yes, fmt::format("{}: {}: {}", what, url, detail)));
  }
}

std::chrono::milliseconds remaining_of(Clock::time_point start, const Options& options)
{
  return std::chrono::duration_cast<std::chrono::milliseconds>(options.deadline - (Clock::now() - start));
}

Error all_failed(const std::string& what, const std::vector<Error>& errors)
{
  Error e;
  e.code = errors.size() == 1 ? errors.front().code : ErrorCode::failed;
  e.message = errors.size() == 1 ? errors.front().message
                                 : fmt::format("{}: every source failed ({} tried)", what, errors.size());
  e.fix = errors.size() == 1 ? errors.front().fix : "see each source below";
  if (errors.size() > 1) {
    e.children = errors;
  }
  return e;
}

} // namespace

std::vector<std::string> candidates(const std::string& upstream, const Options& options)
{
  if (!options.base_url.empty()) {
    return {join_base(options.base_url, upstream)};
  }
  std::vector<std::string> out;
  for (const auto& m : options.mirrors) {
    out.push_back(join_base(m, upstream));
  }
  out.push_back(upstream);
  return out;
}

Result<Fetched> download(const std::string& what, const std::string& upstream, const std::filesystem::path& dest,
                         const Expect& expect, const Options& options)
{
  if (expect.sha256.empty() && !expect.first_download) {
    return fail(ErrorCode::internal, fmt::format("{}: download without an expected sha256", what));
  }
  const auto start = Clock::now();
  const std::filesystem::path part = dest.string() + ".part";
  std::error_code ec;
  std::filesystem::create_directories(dest.parent_path(), ec);
  std::vector<Error> errors;
  Fetched result;
  ByteProgress progress(what, options.progress);
  for (const auto& url : candidates(upstream, options)) {
    int attempts = 0;
    auto got = retry(
      options.backoff, what,
      [&]() -> Status {
        Transfer t;
        t.progress = &progress;
        t.file = std::fopen(part.c_str(), "ab");
        if (t.file == nullptr) {
          return fail(ErrorCode::io, fmt::format("cannot write {}: {}", part.string(), std::strerror(errno)));
        }
        t.offset = std::ftell(t.file);
        result.resumed = t.offset > 0;
        if (t.offset > 0) {
          log::debug("{}: continuing {} from byte {}", what, url, t.offset);
        }
        auto s = perform(t, what, url, options, remaining_of(start, options));
        const bool write_ok = std::fflush(t.file) == 0 && ::fsync(::fileno(t.file)) == 0;
        std::fclose(t.file);
        if (t.restarted) {
          result.resumed = false;
        }
        if (!s && (s.error().message.find("HTTP 416") != std::string::npos ||
                   s.error().message.find("no byte ranges") != std::string::npos)) {
          std::filesystem::remove(part, ec);
        }
        if (s && !write_ok) {
          return fail(ErrorCode::io, fmt::format("cannot write {}", part.string()));
        }
        return s;
      },
      &attempts);
    result.attempts += attempts;
    if (!got) {
      if (got.error().code == ErrorCode::interrupted) {
        return tl::unexpected(got.error());
      }
      errors.push_back(got.error());
      // What came from this source is not continued from another one.
      std::filesystem::remove(part, ec);
      continue;
    }
    TRY_ASSIGN(const std::string sha, sha256_file_hex(part));
    if (!expect.sha256.empty() && sha != expect.sha256) {
      std::filesystem::remove(part, ec);
      errors.push_back(url_error(ErrorCode::failed, Retryable::no,
                                 fmt::format("{}: sha256 mismatch for {}: expected {}, got {}", what, url, expect.sha256, sha),
                                 "the file is not the one the matrix pins: check the mirror, or the pin"));
      continue;
    }
    std::filesystem::rename(part, dest, ec);
    if (ec) {
      return fail(ErrorCode::io, fmt::format("cannot rename {} to {}: {}", part.string(), dest.string(), ec.message()));
    }
    result.url = url;
    result.sha256 = sha;
    result.bytes = std::filesystem::file_size(dest, ec);
    return result;
  }
  return tl::unexpected(all_failed(what, errors));
}

Result<std::string> fetch_text(const std::string& what, const std::string& upstream, const Options& options, std::size_t max_bytes)
{
  const auto start = Clock::now();
  std::vector<Error> errors;
  for (const auto& url : candidates(upstream, options)) {
    std::string body;
    auto got = retry(options.backoff, what, [&]() -> Status {
      body.clear();
      Transfer t;
      t.text = &body;
      t.max_text = max_bytes;
      return perform(t, what, url, options, remaining_of(start, options));
    });
    if (got) {
      return body;
    }
    if (got.error().code == ErrorCode::interrupted) {
      return tl::unexpected(got.error());
    }
    errors.push_back(got.error());
  }
  return tl::unexpected(all_failed(what, errors));
}

std::optional<std::string> parse_checksum_file(const std::string& text, const std::string& file_name)
{
  static const std::regex line_re(R"(^\s*([0-9a-fA-F]{64})(?:\s+\*?(\S+))?\s*$)");
  std::istringstream in(text);
  std::string line;
  std::optional<std::string> bare;
  size_t digests = 0;
  while (std::getline(in, line)) {
    std::smatch m;
    if (!std::regex_match(line, m, line_re)) {
      continue;
    }
    ++digests;
    std::string hex = m[1];
    for (auto& c : hex) {
      c = char(std::tolower(static_cast<unsigned char>(c)));
    }
    if (m[2].matched) {
      std::string name = m[2];
      const auto slash = name.rfind('/');
      if ((slash == std::string::npos ? name : name.substr(slash + 1)) == file_name) {
        return hex;
      }
    } else {
      bare = hex;
    }
  }
  // A file with one bare digest (dl.k8s.io's .sha256) names no file: it is the one beside it.
  if (bare && digests == 1) {
    return bare;
  }
  return std::nullopt;
}

} // namespace mlplat::fetch
