// Sampling schedulers vs diffusers 0.32.2 (goldens: tools/parity/generation_goldens.py): timesteps, sigmas,
// init_noise_sigma, and a full run of scale_model_input + step() on random model outputs, fp32 and 16-bit.
#include "harness/backbones/schedulers.h"
#include "harness/core/errors.h"
#include "harness/io/safetensors.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

using namespace gb::bb;

namespace {

const std::string kDir = std::string(GB_SOURCE_DIR) + "/tests/generation/golden/schedulers/";

double max_abs(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

TEST(SamplingSchedulers, MatchDiffusersOnRandomInputs) {
  auto gold = gb::load_safetensors(kDir + "schedulers.safetensors");
  nlohmann::json index;
  std::ifstream(kDir + "index.json") >> index;
  ASSERT_GE(index.size(), 10u);
  for (const auto& c : index) {
    const std::string name = c["case"];
    SCOPED_TRACE(name);
    auto cfg = SchedulerConfig::from_json(kDir + c["config"].get<std::string>(), c["class"].get<std::string>());
    auto s = make_sampling_scheduler(cfg);
    s->set_timesteps(c["steps"].get<int64_t>(), c["mu"].get<double>());
    const auto& gts = gold.at(name + ".timesteps");
    ASSERT_EQ(static_cast<int64_t>(s->timesteps().size()), gts.size(0));
    for (int64_t i = 0; i < gts.size(0); ++i) EXPECT_EQ(s->timesteps()[i], gts[i].item<double>()) << "timestep " << i;
    if (gold.count(name + ".sigmas")) {
      const auto& gs = gold.at(name + ".sigmas");
      ASSERT_EQ(static_cast<int64_t>(s->sigmas().size()), gs.size(0));
      for (int64_t i = 0; i < gs.size(0); ++i) EXPECT_EQ(s->sigmas()[i], gs[i].item<float>()) << "sigma " << i;
    }
    EXPECT_EQ(s->init_noise_sigma().item<float>(), gold.at(name + ".init_noise_sigma")[0].item<float>());
    const auto& xs = gold.at(name + ".x");
    const auto& xins = gold.at(name + ".x_in");
    const auto& outs = gold.at(name + ".model_out");
    at::Tensor x = xs[0];
    for (int64_t i = 0; i < outs.size(0); ++i) {
      at::Tensor x_in = s->scale_model_input(x);
      ASSERT_EQ(x_in.scalar_type(), xins[i].scalar_type());
      EXPECT_EQ(max_abs(x_in, xins[i]), 0.0) << "scale_model_input " << i;
      x = s->step(outs[i], x);
      ASSERT_EQ(x.scalar_type(), xs[i + 1].scalar_type()) << "step " << i;
      // Bit-exact where the arithmetic is the reference's; the bound only absorbs a last-ulp difference.
      EXPECT_LE(max_abs(x, xs[i + 1]), 1e-6 * (1 + xs[i + 1].abs().max().item<double>())) << "step " << i;
    }
  }
}

TEST(SamplingSchedulers, ClassOverrideTakesTheNewClassDefaults) {
  // DDIM from SD1.5's PNDM file keeps the file's clip_sample false and set_alpha_to_one false; Euler from it
  // falls back to its own linspace spacing only when the file does not set one.
  auto ddim = SchedulerConfig::from_json(kDir + "sd15.json", scheduler_class_for("ddim"));
  EXPECT_EQ(ddim.class_name, "DDIMScheduler");
  EXPECT_FALSE(ddim.clip_sample);
  EXPECT_FALSE(ddim.set_alpha_to_one);
  EXPECT_EQ(ddim.timestep_spacing, "leading");
  auto euler = SchedulerConfig::from_json(kDir + "sd15.json", "EulerDiscreteScheduler");
  EXPECT_EQ(euler.timestep_spacing, "linspace");
  EXPECT_EQ(euler.steps_offset, 1);
  auto dpm = SchedulerConfig::from_json(kDir + "pixart.json");
  EXPECT_EQ(dpm.algorithm_type, "dpmsolver++");
  EXPECT_EQ(dpm.solver_order, 2);
}

TEST(SamplingSchedulers, UnknownNamesAndOptionsAreUserErrors) {
  EXPECT_THROW(scheduler_class_for("heun"), gb::UserError);
  EXPECT_EQ(scheduler_class_for("dpm++2m"), "DPMSolverMultistepScheduler");
  EXPECT_EQ(scheduler_class_for("EulerDiscreteScheduler"), "EulerDiscreteScheduler");
  const auto p = std::filesystem::temp_directory_path() / "gb_sched_karras.json";
  std::ofstream(p) << R"({"_class_name": "EulerDiscreteScheduler", "use_karras_sigmas": true})";
  try {
    SchedulerConfig::from_json(p.string());
    FAIL() << "no error";
  } catch (const gb::UserError& e) {
    EXPECT_NE(std::string(e.what()).find("use_karras_sigmas"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos);
  }
  std::filesystem::remove(p);
}

}  // namespace
