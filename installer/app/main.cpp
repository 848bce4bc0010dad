// Process entry: library initialisation, then the CLI. Exceptions are caught here once: an mlplat
// Fatal is an expected stop with its own exit code; anything else is a bug (exit 70).
#include "app/cli.hpp"
#include "util/error.hpp"
#include "util/interrupt.hpp"
#include "util/log.hpp"

#include <curl/curl.h>
#include <libssh/libssh.h>

#include <exception>

int main(int argc, char** argv)
{
  // Before any thread starts: both libraries' global state.
  ssh_init();
  curl_global_init(CURL_GLOBAL_DEFAULT);
  mlplat::interrupt::install_handlers();
  int rc = mlplat::k_exit_internal;
  try {
    rc = mlplat::app::run_cli(argc, argv);
  } catch (const mlplat::Fatal& fatal) {
    mlplat::log::write(mlplat::log::Level::error, {}, fatal.error().render());
    rc = mlplat::exit_code_for(fatal.error());
  } catch (const std::exception& e) {
    mlplat::log::error("internal error (a bug in mlplat, please report it): {}", e.what());
    rc = mlplat::k_exit_internal;
  }
  curl_global_cleanup();
  ssh_finalize();
  return rc;
}
