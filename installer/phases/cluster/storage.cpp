#include "phases/phases.hpp"

#include "assets/assets.hpp"
#include "phases/common.hpp"
#include "render/platform.hpp"
#include "util/text.hpp"
#include "yamlio/emit.hpp"

#include <fmt/core.h>

namespace mlplat::phases {

using namespace workflow;

namespace {

using render::row_image;

Result<Phase> storage_phase(transport::Fleet& fleet, const config::Effective& effective, const Context& in)
{
  TRY_ASSIGN(const std::string provisioner, row_image(*in.row, "openebs/provisioner-localpv"));
  TRY_ASSIGN(const std::string helper, row_image(*in.row, "openebs/linux-utils"));
  TRY_ASSIGN(const std::string openebs_tmpl, assets::read("manifests/storage/openebs-hostpath.yaml"));
  TRY_ASSIGN(const std::string probe_tmpl, assets::read("manifests/storage/probe.yaml"));
  const yamlio::FillValues values{{"@PROVISIONER_IMAGE@", provisioner}, {"@HELPER_IMAGE@", helper}, {"@BASE_PATH@", effective.base_path}};
  TRY_ASSIGN(const std::string openebs, yamlio::fill(openebs_tmpl, "manifests/storage/openebs-hostpath.yaml", values));
  TRY_ASSIGN(const std::string probe_manifest, yamlio::fill(probe_tmpl, "manifests/storage/probe.yaml", values));
  const std::string k = kubectl();
  Phase p;
  p.name = "storage";
  p.summary = fmt::format("OpenEBS LocalPV hostpath at {} as the default StorageClass, proven by a volume", effective.base_path);
  p.hosts = {in.first_control_plane};
  p.deadline = std::chrono::seconds(900);
  std::vector<Step> steps;
  steps.push_back(gate_step(fleet, *in.row, compat::Stage::storage));
  steps.push_back(apply_step(fleet, "openebs-hostpath", std::string(k_manifest_dir) + "/openebs-hostpath.yaml", openebs));
  steps.push_back(wait_step(fleet, "provisioner-ready", "the provisioner's rollout (deployment openebs-localpv-provisioner in namespace openebs)",
                            fmt::format("{} -n openebs rollout status deployment/openebs-localpv-provisioner --timeout=5s >/dev/null 2>&1", k),
                            std::chrono::seconds(300)));
  // The only default: no other StorageClass may carry the default annotation.
  steps.push_back(script_step(
    fleet, "only-default", "openebs-hostpath", "check that openebs-hostpath is the only default StorageClass",
    fmt::format("[ \"$({} get storageclass -o jsonpath='{{range .items[*]}}{{.metadata.name}}={{.metadata.annotations.storageclass\\.kubernetes\\.io/is-default-class}}{{\"\\n\"}}{{end}}' "
                "| grep '=true$')\" = openebs-hostpath=true ] || exit 1\nexit 0\n", k),
    "make every other StorageClass not default",
    fmt::format("for sc in $({0} get storageclass -o jsonpath='{{range .items[*]}}{{.metadata.name}}={{.metadata.annotations.storageclass\\.kubernetes\\.io/is-default-class}}{{\"\\n\"}}{{end}}' "
                "| grep '=true$' | cut -d= -f1 | grep -vx openebs-hostpath); do\n"
                "  {0} annotate storageclass \"$sc\" storageclass.kubernetes.io/is-default-class=false --overwrite\ndone\n", k)));
  const std::string phase_of = fmt::format("{} -n mlplat-probe get pod storage-probe -o jsonpath='{{.status.phase}}' 2>/dev/null", k);
  steps.push_back(apply_step(fleet, "volume-probe", std::string(k_manifest_dir) + "/storage-probe.yaml", probe_manifest));
  // A probe that does not succeed is reported with what the pod said.
  steps.push_back(wait_step(fleet, "volume-written",
                            "the storage probe (pod storage-probe in namespace mlplat-probe) to write its volume as a non-root user",
                            fmt::format("[ \"$({})\" = Succeeded ]", phase_of), std::chrono::seconds(300),
                            {"pod phase and log",
                             fmt::format("{}; echo; {} -n mlplat-probe logs storage-probe 2>&1 | tail -n 5", phase_of, k),
                             "check the base path on the node (free space, mounted, not read-only) and the provisioner's log: "
                             "kubectl -n openebs logs deployment/openebs-localpv-provisioner"}));
  p.steps = [steps](size_t) { return steps; };
  return p;
}

} // namespace

PhaseSpec storage()
{
  PhaseSpec spec;
  spec.path = "cluster/storage";
  spec.summary = "OpenEBS LocalPV hostpath as the only default StorageClass, proven by a volume";
  spec.build = [](Context& ctx) -> Result<Phase> { return storage_phase(ctx.fleet, ctx.effective, ctx); };
  return spec;
}

} // namespace mlplat::phases
