// The commands that change hosts, each one file holding its ordered phase list and what it does
// around them (workflow::CommandSpec); app/ registers them with the CLI and workflow::run_command
// runs them.
#pragma once

#include "workflow/command.hpp"

#include <vector>

namespace mlplat::commands {

// --- Interface ---

// install's phases, in order: host/ (prepare, artifacts, containerd), cluster/ (init, joins,
// kubeconfig, nodes, cni, storage, cleanup), platform/ (pipelines, istio, tls, gateway, smoke).
std::vector<workflow::PhaseSpec> install_phases();

// `mlplat install`: the matrix gate, the locks, doctor on every host, install's phases; renders the
// platform and settles the ingress certificate on this machine first; prints the cluster's summary.
workflow::CommandSpec install();

// `mlplat plan`: install in dry-run: the same gates and phases, the commands install would run per
// host, built from the hosts' real state; changes nothing and writes nothing.
workflow::CommandSpec plan();

// `mlplat certs rotate`: a new leaf from the stored CA (self-signed) or the provided files again
// (validated first), into the gateway's Secret (platform/tls); then waits up to `wait_seconds` for
// the gateway to serve it.
workflow::CommandSpec certs_rotate(int wait_seconds);

// The commands a dry run recorded, per host in file order: a header saying how many of `summary`'s
// steps would change there, then "step: description" and the script (withheld when it carries a secret).
void print_planned_hosts(const workflow::Context& ctx, const workflow::Summary& summary);

// reset's phases, in order: reset/volumes (recorded), reset/kubeadm, reset/host, reset/data (--purge-data).
std::vector<workflow::PhaseSpec> reset_phases();

// `mlplat reset` (and `reset --dry-run`): the request's hosts (default: all) converged to nothing
// mlplat installed, their data kept and recorded unless --purge-data; their journal steps forgotten.
// No matrix gate, no doctor; the cluster lock only where mlplat's directory still is.
workflow::CommandSpec reset(bool dry_run);

// remove-node's phases, in order: reset/volumes, node/check, node/drain, node/etcd-member,
// reset/kubeadm, reset/host, reset/data (--purge-data), node/delete.
std::vector<workflow::PhaseSpec> remove_node_phases();

// `mlplat remove-node NAME...` (the request's hosts): refused for the last control plane and for a
// removal that breaks etcd's quorum; warns that the hosts are still in the cluster file.
workflow::CommandSpec remove_node(bool dry_run);

// The serial the gateway serves now for the ingress `render` (lowercase hex, no colons), verified
// against `ca_file`, or why it could not be read.
Result<std::string> served_serial(const render::PlatformRender& render, const std::filesystem::path& ca_file);

// A serial as fetch::get reports it: lowercase hex, no colons.
std::string serial_key(const std::string& hex);

} // namespace mlplat::commands
