// The DiT backbones' noising step against diffusers' schedulers (goldens from tools/parity/dit_goldens.py with
// the real PixArt-Sigma and FLUX.1-dev scheduler configs), and the 16-channel Flux VAE encoder.
#include "dit_test_util.h"

#include "harness/backbones/dit_noising.h"
#include "harness/backbones/vae.h"
#include "harness/backbones/weights.h"

using namespace gb::bb;

TEST(PixArtNoising, TimestepAndCoefficientsMatchDpmSolver) {
  auto g = dit_test::golden("pixart");
  auto p = plan_pixart_noising(DpmSchedulerConfig::pixart_sigma(), 100);
  EXPECT_EQ(p.timestep, 100);
  EXPECT_EQ(p.timestep, g.at("sched.timestep").item<int64_t>());
  // ᾱ_100 of the linear schedule = 0.895142 (spec §4.6): α_t = 0.946119, σ_t = 0.323818.
  at::Tensor one = at::ones({1});
  at::Tensor zero = at::zeros({1});
  EXPECT_NEAR(p.apply(one, zero).item<float>(), g.at("sched.alpha_t").item<float>(), 1e-7);
  EXPECT_NEAR(p.apply(zero, one).item<float>(), g.at("sched.sigma_t").item<float>(), 1e-7);
  EXPECT_NEAR(p.apply(one, zero).item<float>(), 0.946119, 2e-6);
  dit_test::expect_close(p.apply(g.at("sched.z0"), g.at("sched.eps")), g.at("sched.noisy"), "noisy", 1e-6);
}

TEST(FluxNoising, ShiftedScheduleMatchesFlowMatchEuler) {
  auto g = dit_test::golden("flux");
  auto p = plan_flux_noising(FlowMatchSchedulerConfig::flux_dev(), 4096, 150);
  EXPECT_NEAR(p.mu, 1.15, 1e-12);
  EXPECT_EQ(p.t_start, 23);
  EXPECT_EQ(p.t_start, g.at("sched.t_start").item<int64_t>());
  auto want = g.at("sched.sigmas");
  ASSERT_EQ(static_cast<int64_t>(p.sigmas.size()) + 1, want.size(0));
  for (size_t i = 0; i < p.sigmas.size(); ++i) EXPECT_EQ(p.sigmas[i], want[i].item<float>()) << i;
  EXPECT_EQ(p.timestep, g.at("sched.timestep").item<float>());
  EXPECT_NEAR(p.sigma, 0.407078, 1e-6);  // spec §5.7
  dit_test::expect_close(p.apply(g.at("sched.z"), g.at("sched.eps")), g.at("sched.noisy"), "scale_noise", 1e-6);
  // bf16 rounding of the pipeline: t -> 408, /1000 -> 0.408203 (spec §5.7.4).
  auto t16 = p.model_timestep(1, at::kBFloat16, at::kCPU);
  EXPECT_NEAR(t16.item<float>(), 0.408203, 1e-6);
  EXPECT_NEAR((t16.to(at::kBFloat16) * 1000).item<float>(), 408.0, 1e-6);
}

TEST(FluxVae, SixteenChannelEncoderWithShiftMatchesDiffusers) {
  auto g = dit_test::golden("flux_vae");
  auto root = dit_test::golden_dir("flux_vae");
  auto cfg = VaeConfig::from_json(root + "/vae/config.json");
  EXPECT_EQ(cfg.latent_channels, 16);
  EXPECT_FALSE(cfg.use_quant_conv);
  ASSERT_TRUE(cfg.shift_factor.has_value());
  auto ws = WeightStore::open_component(root, "vae", at::kFloat, at::kCPU);
  VaeEncoder vae(cfg, ws);
  ws.finish();
  auto moments = vae.moments(g.at("image"));
  dit_test::expect_close(moments.narrow(1, 0, 16), g.at("mean"), "mean");
  dit_test::expect_close(moments.narrow(1, 16, 16), g.at("logvar"), "logvar");
  dit_test::expect_close(vae.sample(g.at("image"), g.at("eps")), g.at("sample"), "sample");
  dit_test::expect_close(vae.latents(g.at("image"), g.at("eps"), at::kFloat), g.at("latent"), "(z - shift) * scale");
}
