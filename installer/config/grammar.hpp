// The grammars of the values mlplat reads from its files (the cluster file, a profile, the matrix) and
// later puts into a remote command, a local command, a rendered file or a path. One place for all of
// them: the loaders call these at load time and report a refusal at the value's file:line:column.
//
// Every check takes the value as written and returns nothing when it has the form, else an Error
// (code config_invalid) whose `message` is a predicate that follows the quoted value in a sentence
// ("is not an IPv4 address") and whose `fix` says what to write instead. The loaders build the
// message as "<field path>: <quoted value> <message>" (see `quoted`). Scanners are hand-written, linear
// in the value's length and bounded (no std::regex: it recurses per character).
#pragma once

#include "config/model.hpp"
#include "util/error.hpp"
#include "util/net.hpp"

#include <string>
#include <string_view>

namespace mlplat::config::grammar {

// --- Interface ---

// The value for a message: 'value' in single quotes, control characters and non-ASCII bytes escaped
// (\n, \x01), at most 80 characters of it (then "...").
std::string quoted(std::string_view value);

// --- Names and addresses ---

// An RFC 1123 host name: dot-separated labels of letters, digits and '-', each 1-63 characters not
// beginning or ending with '-', at most 253 in all, no trailing dot. Case is free.
Status hostname(std::string_view value);

// A literal IPv4 address (dotted quad).
Status ipv4(std::string_view value);

// A literal IPv6 address, without brackets and without a zone ("fd00::1").
Status ipv6(std::string_view value);

// A host name or a literal IPv4/IPv6 address; never beginning with '-' (an option to ssh).
Status address(std::string_view value);

// A DNS-1123 label as Kubernetes names use it: lowercase letters, digits and '-', 1-63, beginning and
// ending with a letter or digit (a cluster name, a namespace).
Status dns_label(std::string_view value);

// A DNS-1123 subdomain: lowercase labels as dns_label joined by '.', at most 253 (node names, the
// ingress domain, a label key's prefix).
Status dns_subdomain(std::string_view value);

// A name a certificate may cover (spec.ingress altNames): a DNS subdomain, optionally with one
// leading "*." wildcard label, or a literal IPv4 or IPv6 address.
Status subject_alt_name(std::string_view value);

// host:port. The host is a host name or IPv4 address, or an IPv6 address in brackets
// ("[fd00::1]:6443"); the port is 1-65535 and required.
struct HostPort {
  std::string host;  // without brackets
  int port = 0;
  bool ipv6 = false;
};
Result<HostPort> endpoint(std::string_view value);

// A CIDR range, parsed for real (net::parse_cidr): address, '/', prefix, no host bits.
Result<net::Cidr> cidr(std::string_view value);

// --- SSH ---

// A login name for SSH: `[a-z_][a-z0-9_-]*`, at most 32 characters. No '$', no '%' (OpenSSH expands
// %r, %h... in its options), no shell metacharacter, no leading '-'.
Status ssh_user(std::string_view value);

// A file on the operator machine (knownHosts, keyPath, the ingress certificate files): not empty, no
// '%' (OpenSSH's tokens), no control character (a newline would start another ssh option), not
// beginning with '-'. "~/" is allowed (expanded later).
Status local_path(std::string_view value);

// A known_hosts file: as local_path, and no whitespace (OpenSSH's UserKnownHostsFile, which the bastion
// connection passes it to, is a whitespace-separated list).
Status known_hosts_path(std::string_view value);

// --- Registries ---

// A registry as image references name it (a key of spec.registry.mirrors, a directory of
// containerd's certs.d): host[:port], the host a host name, IPv4 or [IPv6]; no '/', never "." or "..".
Status registry_host(std::string_view value);

// A registry mirror's URL: http:// or https://, a host (name, IPv4 or [IPv6]), an optional :port, an
// optional path of letters, digits and "-._~/"; no user info, query or fragment, no quote, whitespace
// or control character.
Status mirror_url(std::string_view value);

// --- Paths on the hosts ---

// spec.storage.basePath (and a profile's): absolute, normalized (no "." or ".." segment, no "//", no
// trailing '/'), only letters, digits and "._/-"; not "/", not /var itself, not a system directory or
// inside one (/etc, /usr, /bin, /sbin, /lib, /lib64, /boot, /proc, /sys, /dev, /run).
Status base_path(std::string_view value);

// --- Kubernetes ---

// A label (or taint) key: an optional DNS-1123 subdomain prefix (at most 253) and '/', then a name of
// 1-63 letters, digits, '-', '_' and '.' beginning and ending with a letter or digit.
Status label_key(std::string_view value);

// A label (or taint) value: empty, or 1-63 characters as a key's name.
Status label_value(std::string_view value);

// A taint as kubectl taint writes it: key[=value]:effect, the effect NoSchedule, PreferNoSchedule or
// NoExecute, key and value as label_key and label_value.
Result<Taint> taint(std::string_view value);

// A Kubernetes user or group name for a client certificate (`mlplat kubeconfig --user/--group`): its
// CN or one O. 1-64 characters (X.509's bound on both) of letters, digits and "-._@:", beginning with
// a letter or digit; never "system:..." (Kubernetes' reserved names: system:masters bypasses RBAC).
// No ',' (kubeadm's --org splits there), '/', '=', '+', quote, whitespace or control character.
Status kube_subject(std::string_view value);

// A resource quantity as Kubernetes writes one for requests: digits with an optional fraction and an
// optional suffix (m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei): "100m", "256Mi", "1.5".
Status quantity(std::string_view value);

// --- The matrix ---

// A version, semver-ish: an optional 'v', MAJOR.MINOR[.PATCH] (digits), then optionally '-' or '+'
// and letters, digits, '.' and '-' ("1.36.4", "v3.32.1", "3.6.8-0").
Status version(std::string_view value);

// A date as YYYY-MM-DD.
Status date(std::string_view value);

// An artifact's URL (and its checksumUrl): https://host[:port]/path, or http:// only to a loopback
// host (127.0.0.0/8, ::1, localhost: a test mirror); the path of letters, digits and "-._~/%+";
// no user info, query, fragment, whitespace, quote or control character.
Status artifact_url(std::string_view value);

// A sha256 written as exactly 64 lowercase hexadecimal digits.
Status sha256_hex(std::string_view value);

// One path component of mlplat's own layout (a bundle's file name, an archive's top directory):
// 1-255 letters, digits, '.', '_' and '-', not "." or "..".
Status file_name(std::string_view value);

// An id in the matrix (a row's id, an artifact's name): lowercase letters, digits, '.' and '-',
// beginning with a letter or digit, at most 128 characters.
Status matrix_id(std::string_view value);

// An image reference per the OCI distribution grammar: [registry[:port]/]path[:tag][@sha256:<64 hex>],
// path components lowercase alphanumerics joined by '.', '_', '__' or '-'s, a tag of at most 128
// word characters, '.' and '-'; a tag or a digest is required (no implicit latest).
Status image_reference(std::string_view value);

// A repository as kustomize names remote bases: host/owner/name ("github.com/argoproj/argo-workflows"),
// components of letters, digits, '.', '_' and '-', never "." or "..".
Status repository(std::string_view value);

// A git ref of a kustomize source ("v4.0.5", "release-2.1"): letters, digits, '.', '_', '-' and '/',
// not beginning with '-' or '/', no ".." and no "//".
Status git_ref(std::string_view value);

// Free text shown to people (an unpinned artifact's reason): one line without control characters,
// at most 500 characters.
Status text_line(std::string_view value);

} // namespace mlplat::config::grammar
