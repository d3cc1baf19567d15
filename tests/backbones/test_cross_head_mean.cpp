// CaptureSpec::cross_map_head_mean on the real backbones (tiny random weights): each cross map is stored as the
// fp32 head average of the maps exactly as they would have been stored (gb::head_average_maps), [B, 1, P, T];
// everything else in the capture is unchanged.
#include "dit_test_util.h"
#include "tiny_dit.h"
#include "tiny_sd.h"

#include "harness/backbones/registry.h"
#include "harness/backbones/flux_backbone.h"
#include "harness/core/capture.h"

using namespace gb::bb;
namespace fs = std::filesystem;

namespace {

void check(const std::string& kind, gb::Backbone& bb, std::optional<at::ScalarType> store) {
  gb::CaptureSpec heads;
  for (const auto& l : bb.list_layers())
    if (l.name.size() > 10 && (l.name.compare(l.name.size() - 10, 10, "-cross-map") == 0 ||
                               l.name.compare(l.name.size() - 9, 9, "-self-map") == 0))
      heads.add(l.name);
  heads.self_map_head_mean = true;
  gb::CaptureSpec mean = heads;
  mean.cross_map_head_mean = true;
  gb::BackboneBatch batch;
  for (int i = 0; i < 2; ++i) {
    batch.images.push_back(tiny::random_image(16, 18 + i, 70 + i));
    batch.prompts.push_back(i ? "a red car" : "cat on a sofa");
    batch.ids.push_back(kind + std::to_string(i));
  }
  batch.seed = 4;
  const gb::Capture a = bb.capture(batch, heads), b = bb.capture(batch, mean);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  int crosses = 0;
  for (const auto& [k, t] : a.tensors) {
    SCOPED_TRACE(kind + " " + k);
    if (k.find("-cross-map") == std::string::npos) {
      EXPECT_TRUE(at::equal(t, b.tensors.at(k)));
      continue;
    }
    ++crosses;
    const at::Tensor& m = b.tensors.at(k);
    ASSERT_EQ(m.sizes(), at::IntArrayRef({2, 1, t.size(2), t.size(3)}));
    EXPECT_EQ(m.scalar_type(), at::kFloat);
    EXPECT_TRUE(at::equal(m, gb::head_average_maps(t, t.scalar_type())));  // t is already in the store dtype
    if (store) {
      EXPECT_EQ(t.scalar_type(), *store);
    }
  }
  EXPECT_GT(crosses, 0);
}

}  // namespace

TEST(CrossMapHeadMean, StableDiffusionPixArtAndFlux) {
  const fs::path dir = fs::temp_directory_path() / "gb_cross_head_mean";
  fs::remove_all(dir);
  auto t5 = std::make_shared<tiny::WordTokenizer>("t5", 6, false, 40);
  for (auto store : {std::optional<at::ScalarType>(), std::optional<at::ScalarType>(at::kBFloat16)}) {
    BackboneOptions o;
    o.image_size = 16;
    o.store_dtype = store;
    {
      auto root = tiny::write_tiny_sd(dir / "sd15", false);
      BackboneOptions so = o;
      so.tokenizer = std::make_shared<tiny::WordTokenizer>("clip", 12, true, 990);
      auto bb = open_backbone(root, so);
      check("sd15", *bb, store);
    }
    o.tokenizer = t5;
    {
      tiny::write_tiny_pixart(dir / "pixart");
      auto bb = open_backbone((dir / "pixart").string(), o);
      check("pixart-sigma", *bb, store);
    }
    {
      tiny::write_tiny_flux(dir / "flux");
      auto bb = open_backbone((dir / "flux").string(), o);
      dynamic_cast<FluxBackbone&>(*bb).set_clip_tokenizer(std::make_shared<tiny::WordTokenizer>("clip", 12, true, 990));
      check("flux", *bb, store);
    }
  }
  fs::remove_all(dir);
}
