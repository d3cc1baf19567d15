#pragma once
// Typed configuration of the GoCA post-processing (spec goca-method.md §B–§E, §I, §J).
//
// Every method enum has a canonical snake_case name (`to_string`) and is parsed by `parse_*`, which
// also accepts the paper's exact spellings (`dot-product w/o clamp`, `sum-1 rescaling + per-token renorm+`,
// `dot-product similarity`, `iou-like`, ...) as aliases. Parsing ignores case and surrounding blanks.
// Unknown strings throw gb::UserError listing every accepted spelling.
#include <cstdint>
#include <string>
#include <vector>

namespace gb::goca {

// §B head aggregation.
enum class HeadMethod {
  Average,            // "average"
  L2Norm,             // "l2_norm"               paper: "l2-norm"
  Cosine,             // "cosine"
  DotProduct,         // "dot_product"           paper: "dot-product"
  DotProductNoClamp,  // "dot_product_no_clamp"  paper: "dot-product w/o clamp" (GoCA)
  CosineVW,           // "cosine_vw"             paper: "cosine + VW"
  DotProductVW,       // "dot_product_vw"        paper: "dot-product + VW"
};

// §C layer aggregation.
enum class LayerMethod {
  Vanilla,               // "vanilla"
  DotProductSimilarity,  // "dot_product_similarity"  paper: "dot-product similarity" (GoCA)
  Mse,                   // "mse"
  IouLike,               // "iou_like"                paper: "iou-like"
};

// §D token-score rescaling. Y = X / rho (sum-1 rescaling), G = 5x5 Gaussian blur, MinMax per map.
enum class RescaleMethod {
  Raw,                       // "raw"                                   X
  PerTokenRenorm,            // "per_token_renorm"                      X / max X
  PerTokenRenormPlus,        // "per_token_renorm_plus"                 MinMax(G*X)          (Vanilla/Baseline)
  Sum1,                      // "sum1"                                  Y
  Sum1Renorm,                // "sum1_renorm"                           Y / max Y
  Sum1RenormPlus,            // "sum1_renorm_plus"                      MinMax(G*Y)          (GoCA)
  Sum1RenormXRaw,            // "sum1_renorm_x_raw"                     (Y / max Y) * X
  Sum1RenormPlusXRaw,        // "sum1_renorm_plus_x_raw"                MinMax(G*Y) * X
  Sum1RenormPlusXRawRenorm,  // "sum1_renorm_plus_x_raw_renorm"         MinMax(G*(MinMax(G*Y) * X))
};

// §C Q1: which channels of the reference feature build the pseudo self-attention.
enum class RefMode {
  Paper,  // "paper": channel 0 only, softmax(f_q f_k) (what src-main computes)
  Full,   // "full":  all C channels, softmax(X X^T / sqrt(C)) (what the paper describes)
};

// §D multi-token objects: reduce an entity's token scores by mean (the code's constant) or sum.
enum class MultiToken { Mean, Sum };

struct MethodConfig {
  HeadMethod head_method = HeadMethod::DotProductNoClamp;
  LayerMethod layer_method = LayerMethod::DotProductSimilarity;
  RescaleMethod rescale_method = RescaleMethod::Sum1RenormPlus;
  RefMode ref_mode = RefMode::Paper;
  MultiToken multi_token = MultiToken::Mean;

  std::vector<std::string> layers;       // cross-map keys ("...-cross-map"), in forward order
  std::string ref_layer;                 // reference feature key (e.g. "up-level2-repeat1-vit-block0-cross-q")
  std::vector<std::string> self_layers;  // self-map keys ("...-self-map") for affinity propagation, forward order
  int64_t propagation_order = 2;         // n in A^n m; used only when self_layers is non-empty
  int64_t output_size = 64;              // S (feat_size)
  bool keep_all_objects = false;         // return the K+B entity maps unmerged (no background max-merge)

  // Throws gb::UserError (message prefixed by `source`) when the configuration cannot run:
  // no layers, a layer key not ending in "-cross-map", a self layer not ending in "-self-map",
  // a missing ref_layer for a non-vanilla layer method, output_size < 3, negative order.
  void validate(const std::string& source = "method config") const;
};

HeadMethod parse_head_method(const std::string& s);
LayerMethod parse_layer_method(const std::string& s);
RescaleMethod parse_rescale_method(const std::string& s);
RefMode parse_ref_mode(const std::string& s);
MultiToken parse_multi_token(const std::string& s);

const char* to_string(HeadMethod m);
const char* to_string(LayerMethod m);
const char* to_string(RescaleMethod m);
const char* to_string(RefMode m);
const char* to_string(MultiToken m);

// The paper's own spelling (the string its configs and code use).
const char* paper_name(HeadMethod m);
const char* paper_name(LayerMethod m);
const char* paper_name(RescaleMethod m);

// Every accepted spelling, canonical names first, then aliases (for error messages and docs).
std::vector<std::string> head_method_spellings();
std::vector<std::string> layer_method_spellings();
std::vector<std::string> rescale_method_spellings();
std::vector<std::string> ref_mode_spellings();
std::vector<std::string> multi_token_spellings();

// All values of each enum, in declaration order (for ablation sweeps and tests).
std::vector<HeadMethod> all_head_methods();
std::vector<LayerMethod> all_layer_methods();
std::vector<RescaleMethod> all_rescale_methods();

}  // namespace gb::goca
