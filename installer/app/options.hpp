// Command-line options as plain data, filled by CLI11 in cli.cpp and read by the commands, which can
// therefore be called (and tested) without CLI11.
#pragma once

#include <string>
#include <vector>

namespace mlplat::app {

enum class Output { text, json };

struct GlobalOptions {
  std::string config = "mlplat.yaml";
  int verbose = 0;
  Output output = Output::text;
  std::string log_file;
  bool yes = false;
  size_t concurrency = 32;
  std::string data_dir;
  std::string matrix_file;  // --matrix: replaces the embedded manifests/matrix.yaml
};

struct DoctorOptions {
  std::vector<std::string> ignore;  // check ids whose errors become warnings ("all" for every one)
  int deadline_seconds = 30;        // per host, for gathering facts
  bool allow_preview = false;       // install: accept a preview matrix row
  std::vector<std::string> only;    // install, plan: only these phases
  std::vector<std::string> skip;    // install, plan: not these phases
  std::string state_dir;            // install: the cluster's state directory (default: state::default_dir)
  std::string profile;              // install --profile: must be the cluster file's spec.profile
  std::string bundle;               // install, plan: the bundle (directory or archive) of the row
  std::string bundle_url;           // install, plan: hosts fetch the bundle's files from here (its directory served over HTTP)
  std::string accept_unsigned_bundle;  // install, plan: the sha256 of a bundle.json taken without a good signature
  size_t worker_batch = 0;          // install, plan: workers joined at most this many at a time (0: all at once)
};

struct CertsOptions {
  std::string state_dir;  // the cluster's state directory (default: state::default_dir)
  bool live = false;      // show: also the serial the gateway serves
  int wait_seconds = 60;  // rotate: how long to wait for the gateway to serve the new certificate
};

struct StatusOptions {
  std::string state_dir;     // the cluster's state directory, read only (default: state::default_dir)
  int deadline_seconds = 60; // per host, for its status script
};

struct KubeconfigOptions {
  std::string file;                 // write here (0600); empty: stdout
  bool force = false;               // overwrite an existing file
  std::string user;                 // --user: issue a kubeconfig for this user (empty: the admin's)
  std::vector<std::string> groups;  // --group: the user's groups (repeatable)
  std::string ttl = "24h";          // --ttl: the user's certificate lifetime
};

struct MatrixOptions {
  std::string row;             // `matrix --row ID`: only this row
  bool allow_preview = false;  // a preview row's refusals become warnings
};

struct BundleOptions {
  std::string row;                           // create: the matrix row (default row when empty)
  std::string output;                        // create: a directory or .tar.gz / .tar.zst
  std::vector<std::string> mirrors;          // create: tried in order before upstream
  std::string base_url;                      // create: replaces upstream entirely
  std::vector<std::string> accept_unpinned;  // create: artifacts taken on first download
  int deadline_seconds = 1800;               // create: per file
  int stall_seconds = 30;                    // create: no byte for this long ends an attempt
  std::string path;                          // verify, list: the bundle
  std::string sign_key;                      // create: SSH private key that signs bundle.json
  std::string allowed_signers;               // verify: ssh-keygen allowed signers file
  std::string signer;                        // verify: the identity in it
  std::string accept_unsigned;               // verify: the sha256 of a bundle.json taken without a good signature
  bool images = false;                       // create: copy the row's images into the bundle (skopeo)
  std::vector<std::string> image_mirrors;    // create: REGISTRY=URL, tried before upstream
  std::string image_mirror_ca;               // create: PEM CA of the image mirrors
  std::string registry_auth;                 // create: a containers-auth.json (default: $MLPLAT_REGISTRY_AUTH)
  bool no_upstream_images = false;           // create: images only from the mirrors
  std::string site;                          // push: the site registry's https URL
  std::string site_ca;                       // push: its CA
  std::string site_credentials;              // push: its credentials file (default: the environment's)
};

struct ResetOptions {
  std::vector<std::string> hosts;  // --hosts: by name (default: every host of the cluster file)
  bool purge_data = false;         // --purge-data: the volumes' directories go too
  bool dry_run = false;            // --dry-run (or `plan reset`): the commands per host, nothing changed
  std::string state_dir;           // the cluster's state directory (default: state::default_dir)
  int drain_seconds = 300;         // remove-node --drain-timeout
};

struct InitOptions {
  std::string profile = "onprem";
  bool force = false;
};

} // namespace mlplat::app
