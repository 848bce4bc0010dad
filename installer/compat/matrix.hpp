// The compatibility matrix (manifests/matrix.yaml): the rows of versions mlplat installs, each
// artifact's URL and how its sha256 is known. Loaded with positions, so a wrong matrix file is
// reported as file:line:column; checked for its own consistency (a supported row whose components do
// not list its Kubernetes is refused when the file is loaded). docs/matrix.md describes the format.
#pragma once

#include "compat/skew.hpp"
#include "util/error.hpp"

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mlplat::compat {

// --- Interface ---

// A version constraint: space-separated terms such as ">=1.32 <=1.36" or ">=2.2.0". A term whose
// version has no patch compares at minor precision ("<=1.36" admits 1.36.9).
struct Constraint {
  struct Term {
    std::string op;  // >=, <=, >, <, =
    Version version;
  };
  std::vector<Term> terms;
  std::string text;  // as written

  static Result<Constraint> parse(std::string_view text);
  bool admits(const Version& v) const;
  bool empty() const { return terms.empty(); }
};

// One component of a row: the version mlplat installs, which already-installed versions it accepts,
// and which Kubernetes versions the component's own project supports.
struct Component {
  std::string name;
  Version version;
  Constraint accepts;     // empty: exactly `version` (same minor for already-installed ones)
  Constraint kubernetes;  // empty: not restricted by its project
  Location where;
};

enum class Verification { pinned, upstream_checksum, unpinned };
std::string to_string(Verification v);

struct Artifact {
  std::string name;        // also the file's directory in a bundle
  std::string url;
  std::string sha256;      // when pinned
  std::string checksum_url;  // when verified against the upstream checksum file
  std::string unpinned_reason;
  Verification verification = Verification::pinned;
  Location where;

  // The file name the URL ends in ("kubeadm", "containerd-2.3.4-linux-amd64.tar.gz").
  std::string file_name() const;
};

// A remote kustomize base ("https://github.com/<repo>/<path>?ref=<ref>") served from an artifact.
struct KustomizeSource {
  std::string repo;      // github.com/argoproj/argo-workflows
  std::string ref;       // v4.0.5
  std::string artifact;  // the artifact (a .tar.gz of the repository at ref)
  std::string root;      // the archive's top directory
};

enum class RowStatus { default_row, supported, preview, legacy };
std::string to_string(RowStatus s);

struct Row {
  std::string id;
  RowStatus status = RowStatus::supported;
  std::string end_of_life;
  Version kubernetes;
  std::string kubeadm_api;
  int containerd_config_version = 3;
  std::vector<std::string> profiles;  // the infrastructure profiles this row is offered on
  std::vector<Component> components;
  std::vector<Artifact> artifacts;
  std::vector<KustomizeSource> kustomize_sources;
  std::vector<std::string> images;
  Location where;

  const Component* component(const std::string& name) const;
  const Artifact* artifact(const std::string& name) const;
};

struct Matrix {
  std::string verified;  // the date its rows were last checked against their sources
  std::string default_row;
  std::string arch;
  std::string kernel_minimum;
  std::vector<std::string> supported_os;  // "debian 12"
  std::vector<Row> rows;
  std::string source;  // file name it was read from

  const Row* find(const std::string& id) const;
  // The row whose Kubernetes minor is `minor` ("1.36"), or nullptr.
  const Row* for_kubernetes(const Version& minor) const;
  const Row& default_() const;
};

// The component names a row may list, in display order.
const std::vector<std::string>& component_names();

// Parses and validates a matrix; every problem is reported with its position.
Result<Matrix> load_matrix(const std::string& text, const std::string& file_name);

// The matrix in use: the file set with set_matrix_file(), else the embedded manifests/matrix.yaml.
Result<Matrix> load_active_matrix();
void set_matrix_file(std::string path);

} // namespace mlplat::compat
