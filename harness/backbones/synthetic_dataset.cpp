#include "harness/backbones/synthetic_scene.h"

#include "harness/core/errors.h"
#include "harness/io/image_io.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

namespace gb::bb {

namespace {
const char* voc_xml_name(int64_t cls) {
  static const char* names[] = {"background", "aeroplane", "bicycle",   "bird",   "boat",        "bottle",
                                "bus",        "car",       "cat",       "chair",  "cow",         "diningtable",
                                "dog",        "horse",     "motorbike", "person", "pottedplant", "sheep",
                                "sofa",       "train",     "tvmonitor"};
  return names[cls];
}
}  // namespace

std::vector<std::string> write_synthetic_voc(const std::string& root, int64_t num_images,
                                             const SyntheticWorldOptions& opt) {
  namespace fs = std::filesystem;
  if (num_images <= 0) fail("synthetic dataset: num_images must be positive (got {})", num_images);
  for (const char* d : {"JPEGImages", "SegmentationClass", "Annotations", "ImageSets/Segmentation"})
    fs::create_directories(fs::path(root) / d);
  std::vector<std::string> ids;
  nlohmann::ordered_json captions = nlohmann::ordered_json::object();
  for (int64_t i = 0; i < num_images; ++i) {
    const std::string id = synthetic_id(i);
    const Scene s = make_scene(id, opt);
    write_jpeg((fs::path(root) / "JPEGImages" / (id + ".jpg")).string(), render_image(s, opt.seed), 95);
    write_png_palette((fs::path(root) / "SegmentationClass" / (id + ".png")).string(), render_label(s).to(at::kByte));
    std::ofstream xml(fs::path(root) / "Annotations" / (id + ".xml"));
    xml << "<annotation>\n  <folder>VOC2012</folder>\n  <filename>" << id << ".jpg</filename>\n"
        << "  <size><width>" << s.width << "</width><height>" << s.height << "</height><depth>3</depth></size>\n"
        << "  <segmented>1</segmented>\n";
    for (const auto& o : s.objects)
      xml << "  <object><name>" << voc_xml_name(o.class_id) << "</name><difficult>0</difficult></object>\n";
    xml << "</annotation>\n";
    if (!xml) fail_file((fs::path(root) / "Annotations" / (id + ".xml")).string(), "cannot write");
    captions[id + ".jpg"] = {{"caption", s.caption()}};
    ids.push_back(id);
  }
  for (const char* list : {"train.txt", "val.txt", "trainval.txt"}) {
    std::ofstream out(fs::path(root) / "ImageSets/Segmentation" / list);
    for (const auto& id : ids) out << id << "\n";
  }
  std::ofstream cj(fs::path(root) / "captions.json");
  cj << captions.dump() << "\n";
  if (!cj) fail_file((fs::path(root) / "captions.json").string(), "cannot write");
  return ids;
}

}  // namespace gb::bb
