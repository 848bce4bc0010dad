// Version-skew and upgrade-path rules against a table of cases (kubernetes.io version-skew policy and
// kubeadm's rules). Each row: the versions, whether it is allowed, and for refusals part of the
// "supported instead" answer.
#include "support/catch.hpp"

#include "compat/skew.hpp"

#include <functional>

using namespace mlplat;
using namespace mlplat::compat;

namespace {

Version v(const std::string& text)
{
  auto parsed = Version::parse(text);
  REQUIRE(parsed);
  return *parsed;
}

struct Case {
  std::string a;
  std::string b;
  bool ok;
  std::string supported; // part of the answer when refused
};

void run_table(const std::string& rule, const std::function<Verdict(const Version&, const Version&)>& check,
               const std::vector<Case>& cases)
{
  for (const auto& c : cases) {
    const Verdict verdict = check(v(c.a), v(c.b));
    INFO(rule << " " << c.a << " / " << c.b << ": " << verdict.reason);
    CHECK(verdict.rule == rule);
    CHECK(verdict.ok == c.ok);
    if (!c.ok) {
      CHECK(verdict.supported.find(c.supported) != std::string::npos);
    }
  }
}

} // namespace

TEST_CASE("versions parse and compare", "[compat]")
{
  CHECK(v("1.36").str() == "1.36");
  CHECK(v("v1.36.2").str() == "1.36.2");
  CHECK(v("1.37.0-rc.1").str() == "1.37.0");
  CHECK(compare(v("1.36.10"), v("1.36.9")) > 0);
  CHECK(compare(v("1.36"), v("1.36.0")) == 0);
  CHECK(compare(v("1.9"), v("1.36")) < 0);
  for (const char* bad : {"", "1", "1.", "1.x", "1..2", "1.36.2.4", "latest", "-1.2"}) {
    INFO(bad);
    CHECK_FALSE(Version::parse(bad));
  }
}

TEST_CASE("SKEW-001 kubelet vs API server", "[compat]")
{
  run_table("SKEW-001", kubelet_vs_apiserver,
            {{"1.36.2", "1.36.2", true, ""},
             {"1.36", "1.33", true, ""},
             {"1.36", "1.32", false, "kubelet 1.33 to 1.36"},
             {"1.36", "1.37", false, "upgrade the API server first"},
             {"1.26", "1.24", true, ""},      // two older, kubelet < 1.25: the limit
             {"1.27", "1.24", false, "1.24"}}); // three older is too many below 1.25
}

TEST_CASE("SKEW-002 kubectl within one minor of the API server", "[compat]")
{
  run_table("SKEW-002", kubectl_vs_apiserver,
            {{"1.36", "1.37", true, ""}, {"1.36", "1.35", true, ""}, {"1.36", "1.38", false, "kubectl 1.35 to 1.37"},
             {"1.36", "1.32", false, "kubectl 1.35 to 1.37"}});
}

TEST_CASE("SKEW-003 controller manager and scheduler vs API server", "[compat]")
{
  run_table("SKEW-003", control_plane_vs_apiserver,
            {{"1.36", "1.36", true, ""}, {"1.36", "1.35", true, ""}, {"1.36", "1.34", false, "1.35 or 1.36"},
             {"1.36", "1.37", false, "1.35 or 1.36"}});
}

TEST_CASE("SKEW-004 HA API servers within one minor", "[compat]")
{
  CHECK(apiservers_ha({v("1.36.1"), v("1.35.9"), v("1.36.2")}).ok);
  const auto far = apiservers_ha({v("1.37.0"), v("1.35.9")});
  CHECK_FALSE(far.ok);
  CHECK(far.rule == "SKEW-004");
  CHECK(far.supported == "upgrade the 1.35.9 API servers to 1.36 first");
}

TEST_CASE("SKEW-005 kube-proxy", "[compat]")
{
  CHECK(kube_proxy(v("1.36"), v("1.36"), v("1.33")).ok);
  CHECK_FALSE(kube_proxy(v("1.36"), v("1.36"), v("1.37")).ok);
  CHECK_FALSE(kube_proxy(v("1.36"), v("1.36"), v("1.32")).ok);
}

TEST_CASE("SKEW-006 kubeadm deploys its own minor or one older", "[compat]")
{
  run_table("SKEW-006", kubeadm_vs_kubernetes,
            {{"1.36.2", "1.36.0", true, ""}, {"1.36", "1.35", true, ""}, {"1.36", "1.34", false, "kubeadm 1.34 (or 1.35)"},
             {"1.36", "1.37", false, "kubeadm 1.37"}});
}

TEST_CASE("SKEW-007 kubelet vs kubeadm", "[compat]")
{
  run_table("SKEW-007", kubeadm_vs_kubelet,
            {{"1.36", "1.36", true, ""}, {"1.36", "1.33", true, ""}, {"1.36", "1.32", false, "kubelet 1.33 to 1.36"},
             {"1.36", "1.37", false, "kubelet 1.33 to 1.36"}});
}

TEST_CASE("SKEW-008 kubeadm join matches the cluster's kubeadm minor", "[compat]")
{
  run_table("SKEW-008", kubeadm_join,
            {{"1.36.1", "1.36.4", true, ""}, {"1.36", "1.35", false, "kubeadm 1.36 on the joining node"},
             {"1.36", "1.37", false, "kubeadm 1.36"}});
}

TEST_CASE("SKEW-009 upgrades go one minor at a time and never down", "[compat]")
{
  run_table("SKEW-009", upgrade_path,
            {{"1.35.9", "1.36.4", true, ""},
             {"1.36.2", "1.36.4", true, ""},  // patch upgrade
             {"1.36.4", "1.36.4", true, ""},  // reconcile
             {"1.35.9", "1.37.1", false, "upgrade to 1.36 first"},
             {"1.34.6", "1.37.0", false, "upgrade to 1.35 first"},
             {"1.36.4", "1.36.2", false, "stay on 1.36.4"},
             {"1.36.4", "1.35.9", false, "stay on 1.36.4"}});
  CHECK(upgrade_path(v("1.35.9"), v("1.37.1")).reason == "1.35.9 to 1.37.1 skips 1 minor; Kubernetes upgrades one minor at a time");
}

TEST_CASE("SKEW-010 kubeadm upgrading a node", "[compat]")
{
  run_table("SKEW-010", kubeadm_upgrade,
            {{"1.35", "1.36", true, ""}, {"1.36", "1.36", true, ""}, {"1.35", "1.37", false, "kubeadm 1.35 or 1.36"},
             {"1.36", "1.35", false, "kubeadm 1.36 or 1.37"}});
}
