// FID statistics from exact feature sums (harness/metrics/fid_sums.h): equal to the statistics of the features,
// independent of the order and grouping the features were added in (shards), and a file round trip.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <unistd.h>

#include "harness/core/errors.h"
#include "harness/metrics/fid_sums.h"
#include "harness/metrics/frechet.h"

namespace {

at::Tensor features(int64_t n, int64_t d, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  // Pool3-like: non-negative, a common offset (the cancellation Q - S Sᵀ / N has to survive) and spread.
  return (at::rand({n, d}, gen, at::kFloat) * 3 + 0.5).pow(2);
}

TEST(FeatureSums, StatisticsMatchTheFeaturesAndMergeIsOrderIndependent) {
  const int64_t D = 64;
  const at::Tensor f = features(9, D, 3);
  gb::metrics::FeatureSums all(D);
  all.add(f);
  EXPECT_EQ(all.count(), 9);
  const auto want = gb::metrics::stats_from_features(f);
  const auto got = all.stats();
  EXPECT_TRUE(at::allclose(got.mu, want.mu, 1e-14, 0));
  EXPECT_LT((got.sigma - want.sigma).abs().max().item<double>(), 1e-12 * want.sigma.abs().max().item<double>());

  // Shards: every third row, added one at a time in reverse, merged in another order.
  gb::metrics::FeatureSums a(D), b(D), c(D);
  for (int64_t i = 8; i >= 0; --i) (i % 3 == 0 ? a : i % 3 == 1 ? b : c).add(f.narrow(0, i, 1));
  gb::metrics::FeatureSums merged(D);
  merged.merge(c);
  merged.merge(a);
  merged.merge(b);
  const auto m = merged.stats();
  EXPECT_EQ(merged.count(), 9);
  EXPECT_TRUE(at::equal(m.mu, got.mu));
  EXPECT_TRUE(at::equal(m.sigma, got.sigma));
  const auto ref = gb::metrics::stats_from_features(features(12, D, 4));
  EXPECT_EQ(gb::metrics::frechet_distance(m, ref).distance, gb::metrics::frechet_distance(got, ref).distance);
}

TEST(FeatureSums, FileRoundTripAndBadInput) {
  const auto dir = std::filesystem::temp_directory_path() / ("gb_fid_sums_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const int64_t D = 16;
  gb::metrics::FeatureSums s(D);
  s.add(features(5, D, 5));
  const std::string path = (dir / "sub" / "sums.safetensors").string();
  s.save(path);
  const auto back = gb::metrics::FeatureSums::load(path, D);
  EXPECT_EQ(back.count(), 5);
  EXPECT_TRUE(at::equal(back.stats().sigma, s.stats().sigma));
  EXPECT_THROW(gb::metrics::FeatureSums::load(path, 2048), gb::UserError);  // another dimension
  EXPECT_THROW(gb::metrics::FeatureSums::load((dir / "none.safetensors").string()), gb::UserError);
  gb::metrics::FeatureSums one(D);
  one.add(features(1, D, 6));
  EXPECT_THROW(one.stats(), gb::UserError);  // FID needs 2 images
  EXPECT_THROW(one.add(at::zeros({1, D + 1})), gb::UserError);
  std::filesystem::remove_all(dir);
}

}  // namespace
