// The `segment` contract's dump validation, on shapes alone (the command runs it on the file header).
#include "baselines/capture_check.h"
#include "baselines/method_yaml.h"
#include "harness/core/errors.h"
#include "tests/test_support.h"

#include <gtest/gtest.h>

#include <functional>

namespace gb::baselines {
namespace {

const std::string A = "down-level1-repeat0-vit-block0-cross-map";  // 8x8
const std::string B = "mid-vit-block0-cross-map";                  // 4x4
const std::string REF = "up-level2-repeat1-vit-block0-cross-q";
const std::string PROP = "up-level3-repeat0-vit-block0-self-map";
std::string sib(const std::string& k, const std::string& name) { return k.substr(0, k.size() - 3) + name; }
std::string self_of(const std::string& k) { return sib(k, "").substr(0, sib(k, "").size() - 6) + "self-map"; }

CaptureMeta good() {
  CaptureMeta m;
  for (const auto& [k, p] : std::vector<std::pair<std::string, int64_t>>{{A, 64}, {B, 16}}) {
    m[k] = {{2, p, 6}, "F16"};
    m[sib(k, "special-value")] = {{2, 6, 3}, "F16"};
    m[sib(k, "special-post-value")] = {{p, 6}, "F16"};
    m[sib(k, "special-weight")] = {{5, 6}, "F16"};
    m[self_of(k)] = {{2, p, p}, "BF16"};
  }
  m[REF] = {{4, 8, 8}, "F32"};
  m[PROP] = {{1, 64, 64}, "F16"};
  return m;
}

goca::MethodConfig method() {
  goca::MethodConfig c;
  c.layers = {A, B};
  c.ref_layer = REF;
  c.self_layers = {PROP};
  c.output_size = 8;
  return c;
}

TokenGroups groups() {
  return TokenGroups::from_json(R"({"objects": [{"class": 1, "tokens": [1, 5]}],
  "background_objects": [[2]], "rescaling_token_ids": [1, 2, 5]})",
                                "t.json");
}

std::string error_of(const CaptureMeta& m, const goca::MethodConfig& c = method(), const TokenGroups& g = groups()) {
  return test::user_error_message([&] { check_capture(m, c, g, "c.safetensors", "t.json"); });
}

TEST(CaptureCheck, AcceptsAConsistentDumpAndReturnsT) {
  EXPECT_EQ(check_capture(good(), method(), groups(), "c", "t"), 6);
  EXPECT_EQ(self_of(A), "down-level1-repeat0-vit-block0-self-map");
}

TEST(CaptureCheck, EveryInconsistencyNamesFileAndKey) {
  struct Case {
    std::string name;
    std::function<void(CaptureMeta&)> edit;
    std::vector<std::string> expect;
  };
  const std::vector<Case> cases = {
      {"missing cross map", [](CaptureMeta& m) { m.erase(B); }, {"c.safetensors: " + B + ": missing"}},
      {"missing self map (layer target)", [](CaptureMeta& m) { m.erase(self_of(A)); }, {self_of(A), "missing"}},
      {"missing ref", [](CaptureMeta& m) { m.erase(REF); }, {REF, "missing", "ref_layer"}},
      {"missing propagation map", [](CaptureMeta& m) { m.erase(PROP); }, {PROP, "missing", "self_layers"}},
      {"value without post-value",
       [](CaptureMeta& m) { m.erase(sib(A, "special-post-value")); },
       {sib(A, "special-post-value"), "missing"}},
      {"value without weight",
       [](CaptureMeta& m) { m.erase(sib(B, "special-weight")); },
       {sib(B, "special-weight"), "missing"}},
      {"rank",
       [](CaptureMeta& m) {
         m[A].shape = {1, 2, 64, 6};
       },
       {A, "rank 4", "[H, P, T]", "batch dimension"}},
      {"H value",
       [](CaptureMeta& m) {
         m[sib(A, "special-value")].shape = {3, 6, 3};
       },
       {sib(A, "special-value"), "3 heads", A}},
      {"T value",
       [](CaptureMeta& m) {
         m[sib(B, "special-value")].shape = {2, 7, 3};
       },
       {sib(B, "special-value"), "7 tokens"}},
      {"T layers",
       [](CaptureMeta& m) {
         m[B].shape = {2, 16, 8};
       },
       {B, "8 tokens", A}},
      {"P post-value",
       [](CaptureMeta& m) {
         m[sib(A, "special-post-value")].shape = {63, 6};
       },
       {"63 pixels"}},
      {"H*d post-value",
       [](CaptureMeta& m) {
         m[sib(A, "special-post-value")].shape = {64, 8};
       },
       {"width 8", "H*d"}},
      {"H*d weight",
       [](CaptureMeta& m) {
         m[sib(B, "special-weight")].shape = {5, 7};
       },
       {sib(B, "special-weight"), "[Dout, 6]"}},
      {"P not square",
       [](CaptureMeta& m) {
         m[B].shape = {2, 15, 6};
       },
       {B, "15 pixels", "square"}},
      {"self map not square grid",
       [](CaptureMeta& m) {
         m[PROP].shape = {1, 60, 60};
       },
       {PROP, "60 pixels"}},
      {"self map P vs cross",
       [](CaptureMeta& m) {
         m[self_of(A)].shape = {2, 16, 16};
       },
       {self_of(A), "16 pixels", A}},
      {"self map not PxP",
       [](CaptureMeta& m) {
         m[PROP].shape = {1, 64, 16};
       },
       {PROP, "[H, P, P]"}},
      {"ref not square",
       [](CaptureMeta& m) {
         m[REF].shape = {4, 8, 6};
       },
       {REF, "[C, r, r]"}},
      {"empty dim",
       [](CaptureMeta& m) {
         m[B].shape = {0, 16, 6};
       },
       {B, "empty"}},
      {"dtype", [](CaptureMeta& m) { m[A].dtype = "I64"; }, {A, "I64", "F16, BF16 or F32"}},
  };
  for (const auto& c : cases) {
    CaptureMeta m = good();
    c.edit(m);
    const std::string e = error_of(m);
    ASSERT_FALSE(e.empty()) << c.name;
    EXPECT_EQ(e.rfind("c.safetensors: ", 0), 0u) << c.name << ": " << e;
    for (const auto& s : c.expect) EXPECT_NE(e.find(s), std::string::npos) << c.name << ": '" << s << "' not in " << e;
  }
}

TEST(CaptureCheck, MethodDecidesWhatIsRequired) {
  CaptureMeta m = good();
  // Force-average: a layer without its special value is fine (spec section B) ...
  m.erase(sib(B, "special-value"));
  m.erase(sib(B, "special-post-value"));
  m.erase(sib(B, "special-weight"));
  EXPECT_EQ(error_of(m), "");
  // ... and average heads / vanilla layers read neither special tensors, self maps nor the reference.
  goca::MethodConfig v = method();
  v.head_method = goca::HeadMethod::Average;
  v.layer_method = goca::LayerMethod::Vanilla;
  m[sib(A, "special-value")].shape = {9, 9, 9};  // inconsistent, but unread
  m.erase(REF);
  m.erase(self_of(A));
  EXPECT_EQ(error_of(m, v), "");
  EXPECT_EQ(keys_to_load(v, m), (std::vector<std::string>{A, B, PROP}));
  const auto all = keys_to_load(method(), good());
  EXPECT_EQ(all.size(), 2u * 5u + 2u);
}

TEST(CaptureCheck, TokenIdsMustBeBelowT) {
  for (const char* json :
       {R"({"objects": [{"class": 7, "tokens": [6]}], "background_objects": [], "rescaling_token_ids": [6]})",
        R"({"objects": [], "background_objects": [[1], [9]], "rescaling_token_ids": [1]})",
        R"({"objects": [], "background_objects": [], "rescaling_token_ids": [1, 77]})"}) {
    const std::string e = error_of(good(), method(), TokenGroups::from_json(json, "t.json"));
    EXPECT_EQ(e.rfind("t.json: ", 0), 0u) << e;
    EXPECT_NE(e.find("T = 6"), std::string::npos) << e;
    EXPECT_NE(e.find("c.safetensors"), std::string::npos) << e;
  }
  // Empty token lists are allowed (quirk Q4: the class map becomes NaN downstream).
  EXPECT_EQ(
      error_of(good(), method(),
               TokenGroups::from_json(
                   R"({"objects": [{"class": 7, "tokens": []}], "background_objects": [], "rescaling_token_ids": []})",
                   "t.json")),
      "");
}

}  // namespace
}  // namespace gb::baselines
