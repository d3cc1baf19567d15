// FID: .npz files, statistics, Fréchet distance, T2IBenchmark's preprocessing and pytorch-fid's Inception-v3,
// against goldens from tools/parity/metrics_goldens.py (pytorch-fid 0.3.0, scipy, Pillow, torchvision, numpy).
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "harness/core/errors.h"
#include "harness/io/image_io.h"
#include "harness/io/safetensors.h"
#include "harness/metrics/fid_inception.h"
#include "harness/metrics/frechet.h"
#include "harness/metrics/npz.h"
#include "tests/metrics/metric_test_weights.h"
#include "tests/metrics/metrics_data.h"
#include "tests/test_support.h"

namespace fs = std::filesystem;
using namespace gb::metrics;

namespace {

using gb::testing::metrics_data;
std::string data(const std::string& name) { return metrics_data(name); }
nlohmann::json goldens_json() { return gb::testing::metrics_goldens(); }

at::Tensor golden(const std::string& key) {
  static gb::SafetensorsFile f(data("goldens.safetensors"));
  return f.load(key);
}

using gb::test::expect_user_error;

fs::path scratch(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("gb_metrics_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

TEST(Npz, ReadsNumpyLayouts) {
  auto a = read_npz(data("layouts.npz"));  // np.savez: stored entries with zip64 local headers
  ASSERT_EQ(a.size(), 5u);
  EXPECT_TRUE(at::equal(a["be"], at::arange(6, at::kDouble).reshape({2, 3})));
  EXPECT_TRUE(at::equal(a["fortran"], at::arange(12, at::kFloat).reshape({3, 4})));
  EXPECT_EQ(a["scalar"].dim(), 0);
  EXPECT_EQ(a["scalar"].item<double>(), 2.5);
  EXPECT_EQ(a["ints"].scalar_type(), at::kShort);
  EXPECT_EQ(a["ints"][1].item<int64_t>(), 7);
  EXPECT_EQ(a["flags"].scalar_type(), at::kBool);
  EXPECT_FALSE(a["flags"][1].item<bool>());
}

TEST(Npz, RoundTripAndCompressedNumpyFiles) {
  auto b = read_npz(data("stats_b.npz"));  // np.savez_compressed, float32
  ASSERT_EQ(b["sigma"].scalar_type(), at::kFloat);
  ASSERT_EQ(b["sigma"].sizes(), (std::vector<int64_t>{64, 64}));
  auto dir = scratch("npz");
  at::Tensor x = at::randn({5, 7}, at::kDouble), y = at::arange(11, at::kLong);
  write_npz((dir / "rt.npz").string(), {{"x", x}, {"y", y}, {"h", x.to(at::kHalf)}});
  auto r = read_npz((dir / "rt.npz").string());
  EXPECT_TRUE(at::equal(r["x"], x));
  EXPECT_TRUE(at::equal(r["y"], y));
  EXPECT_TRUE(at::equal(r["h"], x.to(at::kHalf)));
  // serialize_npy -> parse_npy; the header is padded to 64 bytes as numpy does.
  const std::string npy = serialize_npy(x);
  EXPECT_EQ((npy.size() - x.nbytes()) % 64, 0u);
  EXPECT_TRUE(at::equal(parse_npy(npy, "x.npy"), x));
  fs::remove_all(dir);
}

TEST(Npz, BadFilesAreUserErrors) {
  auto dir = scratch("npz_bad");
  const std::string junk = (dir / "junk.npz").string();
  std::ofstream(junk) << "this is not a zip archive at all";
  EXPECT_NE(expect_user_error([&] { read_npz(junk); }).find("junk.npz"), std::string::npos);
  // Truncated archive.
  std::ifstream in(data("stats_a.npz"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string cut = (dir / "cut.npz").string();
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  EXPECT_NE(expect_user_error([&] { read_npz(cut); }).find("cut.npz"), std::string::npos);
  // A flipped data byte fails the CRC.
  bytes[bytes.size() / 3] ^= 0x55;
  const std::string flip = (dir / "flip.npz").string();
  std::ofstream(flip, std::ios::binary) << bytes;
  EXPECT_NE(expect_user_error([&] { read_npz(flip); }).find("CRC"), std::string::npos);
  EXPECT_NE(expect_user_error([&] { read_npz((dir / "absent.npz").string()); }).find("absent.npz"), std::string::npos);
  fs::remove_all(dir);
}

TEST(Npz, HeaderSizesAreCheckedBeforeAllocating) {
  // A .npy header whose shape overflows int64 when multiplied, or needs more bytes than follow it.
  auto npy = [](const std::string& shape) {
    std::string h = "{'descr': '<f8', 'fortran_order': False, 'shape': " + shape + ", }";
    h.append((64 - (10 + h.size() + 1) % 64) % 64, ' ');
    h.push_back('\n');
    std::string b("\x93NUMPY\x01\x00", 8);
    b.push_back(static_cast<char>(h.size() & 0xff));
    b.push_back(static_cast<char>(h.size() >> 8));
    return b + h + std::string(16, '\0');
  };
  for (const char* shape : {"(4294967296, 4294967296, 16)", "(3, 1000000)", "(9223372036854775807, 2)"}) {
    const std::string e = expect_user_error([&] { parse_npy(npy(shape), "big.npy"); });
    EXPECT_NE(e.find("big.npy: .npy shape"), std::string::npos) << e;
    EXPECT_NE(e.find("needs more than the 16 data bytes"), std::string::npos) << e;
  }
  EXPECT_EQ(parse_npy(npy("(2,)"), "ok.npy").numel(), 2);
  // Found by fuzz/fuzz_npz: an empty array copied its 0 bytes to a null pointer (undefined behaviour).
  EXPECT_EQ(parse_npy(npy("(0, 3)"), "empty.npy").sizes(), (std::vector<int64_t>{0, 3}));
  // Found by fuzz/fuzz_npz: a shape that is not a tuple threw std::out_of_range (an internal error).
  EXPECT_NE(expect_user_error([&] { parse_npy(npy(""), "noshape.npy"); }).find("malformed .npy shape"),
            std::string::npos);
  // A deflated zip entry that claims to inflate to 4 GB from a few bytes.
  std::ifstream in(data("stats_b.npz"), std::ios::binary);  // np.savez_compressed
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto dir = scratch("npz_sizes");
  const size_t cd = bytes.rfind(std::string("PK\x01\x02", 4));
  ASSERT_NE(cd, std::string::npos);
  ASSERT_EQ(bytes[cd + 10], 8);  // the last entry is deflated; claim 0xfffffff0 bytes uncompressed
  for (int k = 0; k < 4; ++k) bytes[cd + 24 + k] = static_cast<char>(k ? 0xff : 0xf0);
  const std::string claim = (dir / "claim.npz").string();
  std::ofstream(claim, std::ios::binary) << bytes;
  EXPECT_NE(expect_user_error([&] { read_npz(claim); }).find("claims 4294967280 bytes inflated from"),
            std::string::npos);
  fs::remove_all(dir);
}

TEST(FidStatsFile, MissingOrMisShapedArrays) {
  std::string m = expect_user_error([] { read_fid_stats(data("stats_no_sigma.npz")); });
  EXPECT_NE(m.find("stats_no_sigma.npz"), std::string::npos);
  EXPECT_NE(m.find("'sigma'"), std::string::npos);
  m = expect_user_error([] { read_fid_stats(data("stats_bad_shape.npz")); });
  EXPECT_NE(m.find("stats_bad_shape.npz"), std::string::npos);
  EXPECT_NE(m.find("[64, 10]"), std::string::npos);
  // Written statistics read back unchanged; extra arrays are ignored.
  auto s = read_fid_stats(data("stats_singular.npz"));
  auto dir = scratch("stats");
  write_fid_stats((dir / "s.npz").string(), s);
  auto t = read_fid_stats((dir / "s.npz").string());
  EXPECT_TRUE(at::equal(s.mu, t.mu));
  EXPECT_TRUE(at::equal(s.sigma, t.sigma));
  fs::remove_all(dir);
}

void expect_rel(double got, double want, double rel, const char* what) {
  EXPECT_NEAR(got, want, rel * std::max(1.0, std::abs(want))) << what;
}

TEST(Frechet, MatchesPytorchFid) {
  const auto j = goldens_json();
  const auto a = read_fid_stats(data("stats_a.npz"));
  const auto b = read_fid_stats(data("stats_b.npz"));
  const auto c = read_fid_stats(data("stats_singular.npz"));
  expect_rel(frechet_distance(a, b).distance, j["fid_a_b"].get<double>(), 1e-11, "full rank");
  // Singular statistics (10 samples, 64 dimensions): scipy's complex square root, real part kept.
  expect_rel(frechet_distance(a, c).distance, j["fid_a_singular"].get<double>(), 1e-7, "one singular");
  FidStats shifted{c.mu + 0.5, c.sigma * 1.5};
  expect_rel(frechet_distance(c, shifted).distance, j["fid_singular_singular_shifted"].get<double>(), 1e-7,
             "both singular");
  EXPECT_NEAR(frechet_distance(a, a).distance, 0.0, 1e-9);
  EXPECT_FALSE(frechet_distance(a, b).used_offset);
}

TEST(Frechet, RejectsMismatchedOrInvalidStatistics) {
  const auto a = read_fid_stats(data("stats_a.npz"));
  FidStats small{a.mu.narrow(0, 0, 8), a.sigma.narrow(0, 0, 8).narrow(1, 0, 8)};
  EXPECT_NE(expect_user_error([&] { frechet_distance(a, small); }).find("different dimensions"), std::string::npos);
  // A "covariance" with a large negative eigenvalue: pytorch-fid's imaginary-component error.
  FidStats neg{a.mu, -at::eye(64, at::kDouble)};
  EXPECT_NE(expect_user_error([&] { frechet_distance(a, neg); }).find("imaginary component"), std::string::npos);
  EXPECT_NE(expect_user_error([] { stats_from_features(at::ones({1, 4})); }).find("at least 2"), std::string::npos);
}

TEST(FidPreprocess, MatchesPilT2IBenchmarkChain) {
  const auto j = goldens_json();
  for (const auto& name : j["images"]) {
    const std::string n = name.get<std::string>();
    const std::string stem = fs::path(n).stem().string();
    at::Tensor u8 = fid_crop_resize(gb::read_image_rgb(data(n)));
    ASSERT_EQ(u8.sizes(), (std::vector<int64_t>{299, 299, 3})) << n;
    EXPECT_TRUE(at::equal(u8.slice(0, 0, 299, 7).slice(1, 0, 299, 7).contiguous(), golden("pre." + stem + ".samples")))
        << n;
    at::Tensor v = u8.to(at::kLong).reshape({-1});
    at::Tensor w = at::arange(v.numel(), at::kLong).remainder(251).add(1);
    at::Tensor sums = golden("pre." + stem + ".checksums");
    EXPECT_EQ(v.sum().item<int64_t>(), sums[0].item<int64_t>()) << n;
    EXPECT_EQ((v * w).sum().item<int64_t>(), sums[1].item<int64_t>()) << n;
    at::Tensor x = fid_preprocess(gb::read_image_rgb(data(n)));
    EXPECT_TRUE(at::equal(x, u8.permute({2, 0, 1}).to(at::kFloat).div(255).mul(2).sub(1))) << n;
  }
}

TEST(FidInceptionNet, FeaturesAndStatisticsMatchPytorchFid) {
  const auto j = goldens_json();
  FidInception net(gb::bb::WeightStore(gb::testing::fid_test_weights(), "fid-test-weights", at::kFloat, at::kCPU));
  // Two of the four images (the CPU forward pass costs ~2-5 s per image here): the downscaled RGBA one and the
  // palette one; tests/cli/test_fid_cli.cpp runs the other two through goca-bench fid.
  std::vector<at::Tensor> xs;
  for (int i : {2, 3}) xs.push_back(fid_preprocess(gb::read_image_rgb(data(j["images"][i].get<std::string>()))));
  at::Tensor f = net.features(at::stack(xs));
  at::Tensor want = golden("features");
  ASSERT_EQ(f.size(1), want.size(1));
  const double err = (f - want.narrow(0, 2, 2)).abs().max().item<double>();
  EXPECT_LT(err, 1e-5 * want.abs().max().item<double>()) << "max abs diff " << err;

  // Statistics of the golden features as pytorch-fid computes them (float64).
  FidStats s = stats_from_features(want);
  EXPECT_LT((s.mu - golden("features_mu")).abs().max().item<double>(), 1e-12);
  EXPECT_LT((s.sigma.diagonal() - golden("features_sigma_diag")).abs().max().item<double>(), 1e-12);
  EXPECT_LT((s.sigma[7] - golden("features_sigma_row7")).abs().max().item<double>(), 1e-12);
  // 2 images against 2 (2048 dimensions, rank 1 each): the singular case at full size.
  FidStats s1 = stats_from_features(want.narrow(0, 0, 2)), s2 = stats_from_features(want.narrow(0, 2, 2));
  expect_rel(frechet_distance(s1, s2).distance, j["fid_features_2v2"].get<double>(), 1e-6, "2 vs 2 images");
}

TEST(FidInceptionNet, StrictWeights) {
  auto w = gb::testing::fid_test_weights();
  w.erase("Mixed_6b.branch7x7_2.conv.weight");
  w["Mixed_7c.branch_pool.bn.running_var"] = at::ones({7});
  w["unexpected.weight"] = at::ones({1});
  w["fc.weight"] = at::zeros({1008, 2048});                              // ignored
  w["Conv2d_1a_3x3.bn.num_batches_tracked"] = at::zeros({}, at::kLong);  // ignored
  const std::string m = expect_user_error(
      [&] { FidInception net(gb::bb::WeightStore(std::move(w), "weights.safetensors", at::kFloat, at::kCPU)); });
  EXPECT_NE(m.find("weights.safetensors"), std::string::npos) << m;
  EXPECT_NE(m.find("Mixed_6b.branch7x7_2.conv.weight"), std::string::npos) << m;
  EXPECT_NE(m.find("Mixed_7c.branch_pool.bn.running_var"), std::string::npos) << m;
  EXPECT_NE(m.find("unexpected.weight"), std::string::npos) << m;
  EXPECT_EQ(m.find("fc.weight"), std::string::npos) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
}

TEST(FidImages, FolderListing) {
  auto dir = scratch("listing");
  EXPECT_NE(expect_user_error([&] { list_fid_images(dir.string()); }).find("no images"), std::string::npos);
  EXPECT_NE(expect_user_error([&] { list_fid_images((dir / "absent").string()); }).find("not found"),
            std::string::npos);
  fs::create_directories(dir / "sub");
  fs::copy_file(data("img_rgb_37x53.png"), dir / "sub" / "b.png");
  fs::copy_file(data("img_gray_64x41.png"), dir / "a.png");
  std::ofstream(dir / "notes.txt") << "x";
  std::ofstream(dir / "upper.PNG") << "x";  // T2IBenchmark matches lower-case extensions only
  auto files = list_fid_images(dir.string());
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(fs::path(files[0]).filename(), "a.png");
  EXPECT_EQ(fs::path(files[1]).filename(), "b.png");
  std::ofstream(dir / "c.webp") << "x";
  EXPECT_NE(expect_user_error([&] { list_fid_images(dir.string()); }).find("c.webp"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
