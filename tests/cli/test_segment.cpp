// `goca-bench segment`: the real binary on small synthetic dumps written here — outputs against the
// in-process PlanSegmentor, F16/BF16 inputs, FTTM with --image, and every malformed-dump case (exit 2,
// one line naming the file and the key).
#include "baselines/method_yaml.h"
#include "baselines/plan_segmentor.h"
#include "harness/core/token_groups.h"
#include "harness/io/image_io.h"
#include "harness/io/safetensors.h"

#include "cli_test_util.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

namespace {

namespace fs = std::filesystem;
using TensorMap = std::map<std::string, at::Tensor>;

using Result = gb::test::CliResult;
Result run_binary(const std::string& args) { return gb::test::run_goca_bench(args); }

const int64_t H = 2, T = 6, D = 3, DOUT = 5;
const std::string L64a = "down-level1-repeat0-vit-block0-cross-map";  // 8x8
const std::string L16 = "mid-vit-block0-cross-map";                   // 4x4
const std::string L64b = "up-level1-repeat0-vit-block0-cross-map";    // 8x8
const std::string REF = "up-level2-repeat1-vit-block0-cross-q";

std::string base(const std::string& map_key) { return map_key.substr(0, map_key.size() - 3); }  // "...-cross-"

// A consistent synthetic capture: softmax cross maps, post-values = concat_h(A_h V_h), softmax self maps.
TensorMap make_dump(uint64_t seed = 1) {
  at::manual_seed(seed);
  TensorMap m;
  for (const auto& [key, side] : std::vector<std::pair<std::string, int64_t>>{{L64a, 8}, {L16, 4}, {L64b, 8}}) {
    const int64_t P = side * side;
    at::Tensor a = at::softmax(at::randn({H, P, T}) * 2, -1);
    at::Tensor v = at::randn({H, T, D});
    m[key] = a;
    m[base(key) + "special-value"] = v;
    m[base(key) + "special-post-value"] = at::matmul(a, v).permute({1, 0, 2}).reshape({P, H * D}).contiguous();
    m[base(key) + "special-weight"] = at::randn({DOUT, H * D});
    m[gb::self_key_for_cross(key)] = at::softmax(at::randn({H, P, P}) * 3, -1);
  }
  m[REF] = at::randn({4, 8, 8});
  return m;
}

const char* kMethod = R"(head_method: 'dot-product w/o clamp'
layer_method: dot-product similarity
rescale_method: sum1_renorm_plus
layers:
  - down-level1-repeat0-vit-block0-cross-map
  - mid-vit-block0-cross-map
  - up-level1-repeat0-vit-block0-cross-map
ref_layer: up-level2-repeat1-vit-block0-cross-q
ref_mode: paper
multi_token: mean
output_size: 8
self_layers: [down-level1-repeat0-vit-block0-self-map, up-level1-repeat0-vit-block0-self-map]
propagation_order: 2
)";

const char* kTokens = R"({"objects": [{"class": 15, "tokens": [1, 2]}, {"class": 3, "tokens": [3]}],
 "background_objects": [[4]], "rescaling_token_ids": [1, 2, 3, 4]})";

class Segment : public ::testing::Test {
 protected:
  fs::path dir;
  void SetUp() override {
    dir = fs::temp_directory_path() / ("gb_segment_" + std::to_string(::getpid()) + "_" +
                                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir);
    write("m.yaml", kMethod);
    write("t.json", kTokens);
  }
  void TearDown() override { fs::remove_all(dir); }
  std::string path(const std::string& name) const { return (dir / name).string(); }
  void write(const std::string& name, const std::string& text) const { std::ofstream(path(name)) << text; }
  void save(const std::string& name, const TensorMap& m) const { gb::save_safetensors(path(name), m); }
  Result segment(const std::string& capture, const std::string& extra = "", const std::string& tokens = "t.json",
                 const std::string& method = "m.yaml") const {
    return run_binary("segment --capture " + path(capture) + " --tokens " + path(tokens) + " --method " + path(method) +
                      " --out " + path("o.safetensors") + " " + extra);
  }
};

gb::baselines::PlanOutput in_process(const TensorMap& dump, const std::string& method_yaml,
                                     const std::optional<at::Tensor>& image = std::nullopt) {
  const auto plan = gb::baselines::parse_method_plan(method_yaml, "m.yaml");
  return gb::baselines::PlanSegmentor(plan).run(dump, gb::TokenGroups::from_json(kTokens, "t.json"), image);
}

TEST_F(Segment, WritesTheMethodsOutputs) {
  const TensorMap dump = make_dump();
  save("c.safetensors", dump);
  const Result r = segment("c.safetensors");
  ASSERT_EQ(r.code, 0) << r.out;
  const TensorMap o = gb::load_safetensors(path("o.safetensors"));
  const auto ref = in_process(dump, kMethod);
  for (const auto& [k, t] : o) EXPECT_EQ(t.scalar_type(), at::kFloat) << k;
  ASSERT_TRUE(o.count("scores") && o.count("pre_propagation") && o.count("aggregated") && o.count("layer_weights"));
  EXPECT_EQ(o.at("scores").sizes(), (std::vector<int64_t>{3, 8, 8}));  // 2 objects + support map
  EXPECT_EQ(o.at("aggregated").sizes(), (std::vector<int64_t>{8, 8, T}));
  EXPECT_EQ(o.at("layer_weights").sizes(), (std::vector<int64_t>{3}));
  EXPECT_TRUE(at::equal(o.at("scores"), ref.segment.scores));
  EXPECT_TRUE(at::equal(o.at("pre_propagation"), ref.segment.pre_propagation));
  EXPECT_TRUE(at::equal(o.at("aggregated"), ref.segment.aggregated));
  EXPECT_TRUE(at::equal(o.at("layer_weights"), ref.segment.layer_weights));
  for (const auto& l : {L64a, L16, L64b}) {
    ASSERT_TRUE(o.count("head_weights." + l)) << l;
    EXPECT_TRUE(at::equal(o.at("head_weights." + l), ref.segment.head_weights.at(l)));
  }
  EXPECT_FALSE(o.count("crf"));
  // Properties that hold whatever the arithmetic: pixels sum to 1 over T, layer weights sum to 1,
  // propagated maps are MinMax'ed.
  EXPECT_TRUE(at::allclose(o.at("aggregated").sum(-1), at::ones({8, 8}), 1e-5, 1e-5));
  EXPECT_NEAR(o.at("layer_weights").sum().item<double>(), 1.0, 1e-6);
  EXPECT_NEAR(o.at("scores")[0].max().item<double>(), 1.0, 1e-6);
  EXPECT_NEAR(o.at("scores")[0].min().item<double>(), 0.0, 1e-6);
  // The metadata records the method in canonical form and the layer order.
  const gb::SafetensorsFile f(path("o.safetensors"));
  EXPECT_NE(f.metadata().at("method").find("head_method: dot_product_no_clamp"), std::string::npos);
  EXPECT_NE(f.metadata().at("layers").find(L16), std::string::npos);
}

TEST_F(Segment, AcceptsHalfPrecisionDumps) {
  for (auto dtype : {at::kHalf, at::kBFloat16}) {
    TensorMap dump = make_dump(2);
    for (auto& [k, t] : dump) t = t.to(dtype);
    save("c16.safetensors", dump);
    const Result r = segment("c16.safetensors");
    ASSERT_EQ(r.code, 0) << r.out;
    const TensorMap o = gb::load_safetensors(path("o.safetensors"));
    const auto ref = in_process(dump, kMethod);  // same half-precision inputs, fp32 math
    EXPECT_TRUE(at::equal(o.at("scores"), ref.segment.scores)) << c10::toString(dtype);
    EXPECT_EQ(o.at("scores").scalar_type(), at::kFloat);
  }
}

// Which keys each method reads (force-average without special values, vanilla without self maps and
// reference) is unit-tested on check_capture / keys_to_load in tests/baselines/test_capture_check.cpp.

TEST_F(Segment, FttmRunsTheDenseCrfOnTheImage) {
  write("fttm.yaml", std::string(kMethod) + "post: dcrf\n");
  const TensorMap dump = make_dump(5);
  save("c.safetensors", dump);
  at::Tensor rgb = at::randint(0, 256, {10, 12, 3}, at::kByte);
  gb::write_png_rgb(path("img.png"), rgb);
  Result r = segment("c.safetensors", "", "t.json", "fttm.yaml");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--image"), std::string::npos) << r.out;
  r = segment("c.safetensors", "--image " + path("img.png"), "t.json", "fttm.yaml");
  ASSERT_EQ(r.code, 0) << r.out;
  const TensorMap o = gb::load_safetensors(path("o.safetensors"));
  ASSERT_TRUE(o.count("crf"));
  EXPECT_EQ(o.at("crf").sizes(), (std::vector<int64_t>{3, 10, 12}));
  const auto ref = in_process(dump, std::string(kMethod) + "post: dcrf\n", gb::read_image_rgb(path("img.png")));
  EXPECT_TRUE(at::equal(o.at("crf"), ref.crf));
  EXPECT_TRUE(at::allclose(o.at("crf").sum(0), at::ones({10, 12}), 1e-5, 1e-5));
}

// Every malformed input: exit 2 and one line that names the file and the key.
TEST_F(Segment, MalformedDumpsAreOneLineErrors) {
  struct Case {
    std::string name;
    std::function<void(TensorMap&)> edit;
    std::vector<std::string> expect;
  };
  // The contract's cases, through the binary; the remaining shape checks are unit-tested on
  // baselines::check_capture (tests/baselines/test_capture_check.cpp), which this command calls first.
  const std::vector<Case> cases = {
      {"missing key",
       [](TensorMap& m) { m.erase(gb::self_key_for_cross(L16)); },
       {"c.safetensors", "mid-vit-block0-self-map", "missing"}},
      {"batch dim kept",
       [](TensorMap& m) { m[L16] = m[L16].unsqueeze(0); },
       {"c.safetensors", L16, "rank 4", "[H, P, T]"}},
      {"H map vs value",
       [](TensorMap& m) {
         m[base(L64a) + "special-value"] = at::randn({3, T, D});
       },
       {"c.safetensors", base(L64a) + "special-value", "3 heads", L64a}},
      {"T map vs value",
       [](TensorMap& m) {
         m[base(L16) + "special-value"] = at::randn({H, T + 1, D});
       },
       {"c.safetensors", base(L16) + "special-value", "7 tokens", L16}},
      {"P not square",
       [](TensorMap& m) {
         m[L16] = at::softmax(at::randn({H, 15, T}), -1);
       },
       {"c.safetensors", L16, "15 pixels", "square"}},
  };
  for (const auto& c : cases) {
    TensorMap dump = make_dump(6);
    c.edit(dump);
    save("c.safetensors", dump);
    const Result r = segment("c.safetensors");
    EXPECT_EQ(r.code, 2) << c.name << ": " << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << c.name << ": " << r.out;
    for (const auto& s : c.expect)
      EXPECT_NE(r.out.find(s), std::string::npos) << c.name << ": '" << s << "' not in " << r.out;
    EXPECT_FALSE(fs::exists(path("o.safetensors"))) << c.name;
  }
}

TEST_F(Segment, BadTokensMethodAndFilesAreOneLineErrors) {
  save("c.safetensors", make_dump(7));
  write("bad_t.json",
        R"({"objects": [{"class": 15, "tokens": [1, 6]}], "background_objects": [], "rescaling_token_ids": [1]})");
  write("bad_m.yaml", std::string(kMethod) + "head_method_typo: cosine\n");
  struct Case {
    Result r;
    std::vector<std::string> expect;
  };
  const std::vector<Case> cases = {
      {segment("c.safetensors", "", "bad_t.json"), {"bad_t.json", "objects[0]", "token id 6", "T = 6"}},
      {segment("c.safetensors", "", "t.json", "bad_m.yaml"), {"bad_m.yaml:14", "head_method_typo", "unknown key"}},
      // An unknown spelling lists the accepted ones, the paper's included.
      {segment("c.safetensors", "--set 'rescale_method=renorm+'"),
       {"--set", "rescale_method", "'sum-1 rescaling + per-token renorm+'"}},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(c.r.code, 2) << c.r.out;
    EXPECT_EQ(std::count(c.r.out.begin(), c.r.out.end(), '\n'), 1) << c.r.out;
    for (const auto& s : c.expect) EXPECT_NE(c.r.out.find(s), std::string::npos) << "'" << s << "' not in " << c.r.out;
  }
  EXPECT_FALSE(fs::exists(path("o.safetensors")));
}

// The shipped SD1.5 Baseline file runs on a dump that has its keys (small synthetic tensors under the
// preset's 8 layer names and 3 propagation maps).
TEST_F(Segment, RunsAShippedPresetFile) {
  at::manual_seed(8);
  const auto& preset = gb::baselines::find_preset("sd15", "baseline");
  TensorMap dump;
  for (const auto& l : preset.plan.method.layers) dump[l] = at::softmax(at::randn({1, 4, T}), -1);  // 2x2 grids
  // Propagation maps of any square size are resized to S = 64 (keys bilinear, queries nearest).
  for (const auto& l : preset.plan.method.self_layers) dump[l] = at::softmax(at::randn({2, 16, 16}), -1).to(at::kHalf);
  save("c.safetensors", dump);
  const Result r =
      run_binary("segment --capture " + path("c.safetensors") + " --tokens " + path("t.json") + " --method " +
                 std::string(GB_SOURCE_DIR) + "/configs/methods/sd15/baseline.yaml --out " + path("o.safetensors"));
  ASSERT_EQ(r.code, 0) << r.out;
  const TensorMap o = gb::load_safetensors(path("o.safetensors"));
  EXPECT_EQ(o.at("scores").sizes(), (std::vector<int64_t>{3, 64, 64}));
  EXPECT_EQ(o.at("layer_weights").sizes(), (std::vector<int64_t>{8, 64, 64}));
}

}  // namespace
