#include "fetch/probe.hpp"

#include "util/interrupt.hpp"
#include "util/text.hpp"

#include <curl/curl.h>
#include <fmt/core.h>

#include <cctype>
#include <memory>

namespace mlplat::fetch {

namespace {

constexpr size_t k_max_body = 1 << 20;

std::string lower(std::string s)
{
  for (auto& ch : s) {
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  return s;
}

size_t on_body(char* data, size_t size, size_t n, void* user)
{
  auto* body = static_cast<std::string*>(user);
  const size_t len = size * n;
  body->append(data, std::min(len, k_max_body - std::min(k_max_body, body->size())));
  return len;
}

size_t on_header(char* data, size_t size, size_t n, void* user)
{
  const std::string line(data, size * n);
  auto* location = static_cast<std::string*>(user);
  if (line.size() > 9 && lower(line.substr(0, 9)) == "location:") {
    *location = std::string(text::trim(line.substr(9)));
  }
  return size * n;
}

// libcurl asks this often while a transfer or a connect is under way: an interrupt ends the probe.
int on_progress(void* /*data*/, curl_off_t, curl_off_t, curl_off_t, curl_off_t)
{
  return interrupt::requested() ? 1 : 0;
}

} // namespace

Result<ProbeReply> get(const ProbeRequest& request)
{
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) {
    return fail(ErrorCode::internal, "libcurl could not make a handle");
  }
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> resolve(nullptr, &curl_slist_free_all);
  for (const auto& r : request.resolve) {
    resolve.reset(curl_slist_append(resolve.release(), r.c_str()));
  }
  ProbeReply reply;
  char error[CURL_ERROR_SIZE] = {0};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(request.timeout.count()));
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_CERTINFO, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!request.ca_file.empty()) {
    curl_easy_setopt(c, CURLOPT_CAINFO, request.ca_file.c_str());
  }
  if (resolve) {
    curl_easy_setopt(c, CURLOPT_RESOLVE, resolve.get());
  }
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &reply.location);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  const CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_ABORTED_BY_CALLBACK && interrupt::requested()) {
    return fail(ErrorCode::interrupted, fmt::format("GET {} interrupted", request.url));
  }
  if (rc != CURLE_OK) {
    return fail(ErrorCode::connect_failed, fmt::format("GET {} failed: {} ({})", request.url, error[0] ? error : curl_easy_strerror(rc),
                                                curl_easy_strerror(rc)));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &reply.status);
  curl_certinfo* certs = nullptr;
  if (curl_easy_getinfo(c, CURLINFO_CERTINFO, &certs) == CURLE_OK && certs != nullptr && certs->num_of_certs > 0) {
    for (curl_slist* s = certs->certinfo[0]; s != nullptr; s = s->next) {
      const std::string field(s->data);
      if (field.rfind("Serial Number:", 0) == 0) {
        const std::string value(text::trim(std::string_view(field).substr(14)));
        for (const char ch : value) {
          if (ch != ':') {
            reply.peer_serial += lower(std::string(1, ch));
          }
        }
      }
    }
  }
  return reply;
}

} // namespace mlplat::fetch
