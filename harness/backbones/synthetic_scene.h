#pragma once
// The synthetic world of the embedded quickstart (docs/runner.md, "The synthetic world").
//
// A scene is derived deterministically from (seed, image id): one or two "stuff" regions split by a horizon
// (sky / wall above, grass / road / floor / water below) and one to three objects of distinct Pascal VOC
// classes drawn as ellipses or rectangles. The same scene renders the RGB image (class colours + texture),
// the VOC label map (class ids, 255 on a one-pixel boundary around objects, as VOC draws it), the
// Annotations XML object list, and a caption in the paper's GPT-4o style ("Cat, (woman, clothes), grass, sky.").
// The synthetic backbone re-derives the scene from the image id, so it "perceives" the scene without
// decoding pixels.
#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace gb::bb {

// Concepts the synthetic world knows: VOC class ids 1..20 for objects, kStuffBase + i for stuff.
inline constexpr int64_t kStuffBase = 100;
// The word "background" (the captioner appends it for VOC, COCO-Object, ADE20K): everything that is stuff.
inline constexpr int64_t kBackgroundConcept = 99;

struct StuffKind {
  const char* word;
  std::array<uint8_t, 3> color;
};
const std::vector<StuffKind>& stuff_kinds();  // sky, wall, grass, road, floor, water

struct SceneObject {
  int64_t class_id = 0;   // VOC id
  int shape = 0;          // 0 ellipse, 1 rectangle
  double cx = 0, cy = 0;  // centre, fraction of width / height
  double rx = 0, ry = 0;  // half extents, fraction of width / height
  std::string word;       // caption word (a captioner synonym of the class)
  std::string part;       // "" or a part word grouped with it: "(woman, clothes)"
};

struct Scene {
  std::string id;
  int64_t width = 0, height = 0;
  double horizon = 0.5;   // fraction of height
  int64_t stuff_top = 0;  // concept ids (kStuffBase + i)
  int64_t stuff_bottom = 0;
  std::vector<SceneObject> objects;  // in drawing order (later on top)

  // Region of every pixel at (height × width): concept id (object class or stuff), int64 [H, W].
  at::Tensor region_map(int64_t out_h, int64_t out_w) const;
  std::vector<int64_t> concepts() const;  // objects then stuff (top, bottom; deduplicated)
  std::string caption() const;
};

struct SyntheticWorldOptions {
  uint64_t seed = 0;
  std::vector<int64_t> classes = {3, 7, 8, 12, 15, 5};  // bird, car, cat, dog, person, bottle
  int64_t min_objects = 1, max_objects = 3;
};

Scene make_scene(const std::string& id, const SyntheticWorldOptions& options);

// Renders the scene: RGB uint8 [H, W, 3] and the VOC label (int64 [H, W], 255 boundaries).
at::Tensor render_image(const Scene& scene, uint64_t seed);
at::Tensor render_label(const Scene& scene);

// Concept masks at side `s` of the square grid the backbone sees (the image resized to a square):
// fraction of each cell covered by each concept, float32 [concepts.size(), s, s].
at::Tensor concept_masks(const Scene& scene, const std::vector<int64_t>& concepts, int64_t side);

// Writes a dataset in the real Pascal VOC 2012 layout under `root`:
//   JPEGImages/<id>.jpg, SegmentationClass/<id>.png (VOC palette), Annotations/<id>.xml,
//   ImageSets/Segmentation/{train,val,trainval}.txt, and `captions.json` in the paper's caption format
//   ({"<id>.jpg": {"caption": "..."}}). Ids are synth_000000 ... Existing identical files are rewritten
//   identically (deterministic). Returns the ids.
std::vector<std::string> write_synthetic_voc(const std::string& root, int64_t num_images,
                                             const SyntheticWorldOptions& options);

std::string synthetic_id(int64_t index);  // "synth_000007"

}  // namespace gb::bb
