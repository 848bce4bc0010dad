// The commands behind `mlplat <command>`. Each returns the process exit code (docs/exit-codes.md) and
// reports expected failures itself; exceptions reaching main are bugs.
#pragma once

#include "app/options.hpp"
#include "util/error.hpp"

#include <string>

namespace mlplat::app {

// --- Interface ---

// `mlplat init`: writes a commented starter cluster file for a profile; never overwrites without --force.
int cmd_init(const GlobalOptions& global, const InitOptions& options);

// `mlplat facts`: connects to every host (read-only) and shows what each one is.
int cmd_facts(const GlobalOptions& global);

// `mlplat doctor`: read-only checks on every host at once; exit 3 while an error remains.
int cmd_doctor(const GlobalOptions& global, const DoctorOptions& options);

// `mlplat install`: the matrix gate (before any connection), the local lock and the journal, doctor
// on every host (errors refuse, changing nothing), then the install phases in order. The phases
// that are not built yet are named, and the command exits 1 after the built ones.
int cmd_install(const GlobalOptions& global, const DoctorOptions& options);

// `mlplat plan`: the same gates and phases in dry-run: per phase and host, the commands install
// would run, built from the hosts' real state; changes nothing and writes no journal.
int cmd_plan(const GlobalOptions& global, const DoctorOptions& options);

// `mlplat matrix`: the rows of the compatibility matrix (a table, or everything with --output json).
int cmd_matrix_show(const GlobalOptions& global, const MatrixOptions& options);

// `mlplat matrix check`: the cluster file judged against the matrix, before any connection; every
// verdict with its rule and row; exit 3 when one refuses.
int cmd_matrix_check(const GlobalOptions& global, const MatrixOptions& options);

// `mlplat bundle create`: downloads and verifies every artifact of a matrix row into a bundle.
int cmd_bundle_create(const GlobalOptions& global, const BundleOptions& options);

// `mlplat bundle verify`: re-hashes a bundle against its bill of materials; exit 1 on any mismatch.
int cmd_bundle_verify(const GlobalOptions& global, const BundleOptions& options);

// `mlplat bundle list`: the bundle's bill of materials (artifacts, checksums, images).
int cmd_bundle_list(const GlobalOptions& global, const BundleOptions& options);

// `mlplat bundle push`: the bundle checked as `bundle verify` checks it, then its images copied to a
// site registry (bundle::push_images; those it serves at the same digest skipped), as install does
// with spec.registry.site, to stock the registry ahead of the install.
int cmd_bundle_push(const GlobalOptions& global, const BundleOptions& options);

// `mlplat version`: the program version and the library versions it runs with.
int cmd_version(const GlobalOptions& global);

// What `mlplat version` and `mlplat --version` print as text: "mlplat V" and "libssh V" lines (no
// final newline).
std::string version_text();

// `mlplat certs show`: the ingress certificate and CA (subject, serial, names, expiry); with --live
// also the serial the gateway serves (exit 1 when it is not this certificate).
int cmd_certs_show(const GlobalOptions& global, const CertsOptions& options);

// `mlplat certs rotate`: a new leaf from the stored CA (self-signed), or the provided files again
// (validated first), into the gateway's Secret; then waits until the gateway serves it.
int cmd_certs_rotate(const GlobalOptions& global, const CertsOptions& options);

// `mlplat reset` / `reset --dry-run` / `plan reset`: asks first (--yes answers) unless a dry run.
int cmd_reset(const GlobalOptions& global, const ResetOptions& options);

// `mlplat remove-node NAME...` (options.hosts), asking first unless --yes or --dry-run.
int cmd_remove_node(const GlobalOptions& global, const ResetOptions& options);

// `mlplat status`: every host and the cluster read-only (one SSH command per host); a table or JSON
// (docs/status.schema.json) on stdout. Exits 0 healthy, 8 degraded, 2 bad config, 4/5 when no host
// could be reached (docs/status.md).
int cmd_status(const GlobalOptions& global, const StatusOptions& options);

// `mlplat kubeconfig`: the admin kubeconfig, or with --user one issued for that user by the cluster
// CA on the first control plane; to stdout or --file (0600, --force to overwrite).
int cmd_kubeconfig(const GlobalOptions& global, const KubeconfigOptions& options);

// A command that is listed but not built yet: says so and exits 1. It never pretends to work.
int cmd_not_built(const std::string& name);

// Prints `error` to stderr (or as JSON on stdout with --output json) and returns its exit code.
int report_error(const GlobalOptions& global, const Error& error);

} // namespace mlplat::app
